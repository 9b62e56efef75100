"""Export: XMP sidecars read back by a real XMP reader, hand-set ratings, the link folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest

from daemon.album import run_selection
from daemon.album.export import check_export_folder
from daemon.album.synthetic import SyntheticPhoto, insert_photo
from daemon.album.xmp import sidecar_paths
from daemon.config import Config, ExportConfig, PhotoFolder
from daemon.errors import ConfigError
from daemon.store.writer import StoreWriter

T0 = 1_700_000_000.0

EXISTING_SIDECAR = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:darktable="http://darktable.sf.net/"
    darktable:xmp_version="5"{rating}>
   <dc:subject><rdf:Bag><rdf:li>beach</rdf:li><rdf:li>family</rdf:li></rdf:Bag></dc:subject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""


# A Lightroom Classic sidecar (IMG_1.xmp) as it saves one: no packet wrapper, every simple
# property an attribute of one Description, Camera Raw settings and an edit history beside them.
LIGHTROOM_SIDECAR = """<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.0-c000 1.000000, 0000/00/00-00:00:00        ">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"
    xmlns:exif="http://ns.adobe.com/exif/1.0/"
    xmlns:aux="http://ns.adobe.com/exif/1.0/aux/"
    xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"
    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
    xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"
   xmp:ModifyDate="2023-06-04T18:22:31+02:00"
   xmp:CreateDate="2023-06-03T14:05:12.48"
   xmp:CreatorTool="Adobe Photoshop Lightroom Classic 12.3 (Macintosh)"
   xmp:MetadataDate="2023-06-04T18:22:31+02:00"{rating}
   xmp:Label="Red"
   tiff:Make="Canon"
   tiff:Model="Canon EOS R6"
   exif:ExposureTime="1/250"
   exif:FNumber="28/10"
   aux:Lens="RF24-105mm F4 L IS USM"
   photoshop:DateCreated="2023-06-03T14:05:12.48"
   xmpMM:DocumentID="xmp.did:0f3e6a2c-6a4b-4c7e-9f7e-2b1a7d9c8e11"
   xmpMM:InstanceID="xmp.iid:0f3e6a2c-6a4b-4c7e-9f7e-2b1a7d9c8e11"
   xmpMM:OriginalDocumentID="5F2A7B0C1D9E4F3A8B6C0D1E2F3A4B5C"
   crs:Version="15.3"
   crs:ProcessVersion="11.0"
   crs:WhiteBalance="As Shot"
   crs:Exposure2012="+0.35"
   crs:HasSettings="True">
   <xmpMM:History>
    <rdf:Seq>
     <rdf:li
      stEvt:action="saved"
      stEvt:instanceID="xmp.iid:0f3e6a2c-6a4b-4c7e-9f7e-2b1a7d9c8e11"
      stEvt:when="2023-06-04T18:22:31+02:00"
      stEvt:softwareAgent="Adobe Photoshop Lightroom Classic 12.3 (Macintosh)"
      stEvt:changed="/metadata"/>
    </rdf:Seq>
   </xmpMM:History>
   <dc:subject>
    <rdf:Bag>
     <rdf:li>beach</rdf:li>
    </rdf:Bag>
   </dc:subject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""

# A darktable 4 sidecar (IMG_1.CR2.xmp) right after import, as exiv2 writes it for darktable: an XML
# declaration, no packet wrapper, darktable's import default of one star, an empty history.
DARKTABLE_SIDECAR = """<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:exif="http://ns.adobe.com/exif/1.0/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
    xmlns:darktable="http://darktable.sf.net/"
   exif:DateTimeOriginal="2023:06:03 14:05:12.480"
   xmp:Rating="{rating}"
   xmpMM:DerivedFrom="{photo}"
   darktable:import_timestamp="63822370000000000"
   darktable:change_timestamp="-1"
   darktable:export_timestamp="-1"
   darktable:print_timestamp="-1"
   darktable:xmp_version="5"
   darktable:raw_params="0"
   darktable:auto_presets_applied="1"
   darktable:history_end="0"
   darktable:iop_order_version="4">
   <darktable:masks_history>
    <rdf:Seq/>
   </darktable:masks_history>
   <darktable:history>
    <rdf:Seq/>
   </darktable:history>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""


def exiftool_sidecar(path: Path, *assignments: str) -> Path:
    """A sidecar exiftool writes from scratch (element form, one Description per namespace)."""
    if not shutil.which("exiftool"):
        pytest.skip("exiftool is not installed (`make test` installs it when apt is available)")
    subprocess.run(["exiftool", "-q", *assignments, "-o", str(path)], check=True, capture_output=True, timeout=30)
    return path


def touch_later(path: Path) -> None:
    """A person's edit seen as one: the sidecar's mtime moves on."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def _exiftool(path: Path) -> dict[str, Any]:
    out = subprocess.run(["exiftool", "-j", "-XMP:all", str(path)], check=True, capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout)[0]


def _libxmp(path: Path) -> dict[str, Any]:
    from libxmp import XMPMeta, consts

    meta = XMPMeta()
    meta.parse_from_str(path.read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    if meta.does_property_exist(consts.XMP_NS_XMP, "Rating"):
        out["Rating"] = int(meta.get_property(consts.XMP_NS_XMP, "Rating"))
    if meta.does_property_exist(consts.XMP_NS_XMP, "Label"):
        out["Label"] = meta.get_property(consts.XMP_NS_XMP, "Label")
    if meta.does_property_exist(consts.XMP_NS_DC, "subject"):
        n = meta.count_array_items(consts.XMP_NS_DC, "subject")
        out["Subject"] = [meta.get_array_item(consts.XMP_NS_DC, "subject", i + 1) for i in range(n)]
    if meta.does_property_exist("http://darktable.sf.net/", "xmp_version"):
        out["Xmp_version"] = int(meta.get_property("http://darktable.sf.net/", "xmp_version"))
    return out


@pytest.fixture(scope="module")
def read_xmp() -> Callable[[Path], dict[str, Any]]:
    """A real XMP reader: exiftool (Debian's libimage-exiftool-perl), else python-xmp-toolkit (libexempi)."""
    if shutil.which("exiftool"):
        return _exiftool
    try:
        import libxmp  # noqa: F401  (raises when libexempi is missing)

        return _libxmp
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"no XMP reader: exiftool is not installed and python-xmp-toolkit cannot load libexempi ({exc}); "
                    "`make test` installs exiftool when apt is available")


@pytest.fixture
def writer(db_path: Path):
    w = StoreWriter(db_path)
    yield w
    w.close()


def library(writer: StoreWriter, folder: Path) -> dict[str, int]:
    """One cluster of three photos (best, good, poor) and a lone photo in another moment, as real files."""
    ids = {}
    for name, score, t in (("best", 0.9, 0), ("good", 0.5, 1), ("poor", 0.1, 2), ("lone", 0.65, 3600)):
        path = folder / f"{name}.jpg"
        path.write_bytes(b"not decoded by the selection")
        ids[name] = writer.call(lambda db, p=path, s=score, t=t: insert_photo(db, SyntheticPhoto(str(p), T0 + t, {"aesthetic": s}, "00ff00ff00ff00ff")))
    return ids


def xmp_config(**export: Any) -> Config:
    return Config(export=ExportConfig(xmp=True, **export))


def test_sidecars_carry_rating_and_label_read_back_by_a_real_xmp_reader(writer: StoreWriter, photo_dir: Path, read_xmp) -> None:
    ids = library(writer, photo_dir)
    writer.call(lambda db: db.conn.execute("INSERT INTO manual_choices VALUES (?, 'reject', 'cli', 0)", (ids["poor"],)))
    run_selection(writer, xmp_config())
    best, good, poor, lone = (read_xmp(photo_dir / f"{n}.jpg.xmp") for n in ("best", "good", "poor", "lone"))
    assert (best["Rating"], best["Label"]) == (5, "Pick")  # composite 0.9 -> 5 stars
    assert good["Rating"] == 3 and "Label" not in good  # 0.5 -> 3 stars, not picked
    assert (poor["Rating"], poor["Label"]) == (-1, "Reject")
    assert (lone["Rating"], lone["Label"]) == (4, "Pick")


def test_an_existing_sidecars_other_fields_survive(writer: StoreWriter, photo_dir: Path, read_xmp) -> None:
    ids = library(writer, photo_dir)
    sidecar = photo_dir / "best.jpg.xmp"
    sidecar.write_text(EXISTING_SIDECAR.format(rating=""), encoding="utf-8")
    run_selection(writer, xmp_config())
    fields = read_xmp(sidecar)
    assert fields["Subject"] == ["beach", "family"]
    assert fields["Xmp_version"] == 5
    assert (fields["Rating"], fields["Label"]) == (5, "Pick")
    assert ids


def test_a_rating_set_by_hand_is_left_alone_and_wins(writer: StoreWriter, photo_dir: Path, read_xmp) -> None:
    ids = library(writer, photo_dir)
    # a sidecar a person rated before keepers ever ran: 5 stars on the poorest photo
    (photo_dir / "poor.jpg.xmp").write_text(EXISTING_SIDECAR.format(rating=' xmp:Rating="5"'), encoding="utf-8")
    run_selection(writer, xmp_config())
    picks = {i for (i,) in writer.db.conn.execute("SELECT image_id FROM picks")}
    assert ids["poor"] in picks  # a hand rating of 4-5 pins
    assert read_xmp(photo_dir / "poor.jpg.xmp")["Rating"] == 5
    assert writer.db.conn.execute("SELECT choice, origin FROM manual_choices WHERE image_id = ?", (ids["poor"],)).fetchone() == ("pin", "xmp")

    # now a person rejects the best photo in their photo tool: keepers' sidecar changes under it
    best = photo_dir / "best.jpg.xmp"
    assert read_xmp(best)["Rating"] == 5
    best.write_text(best.read_text(encoding="utf-8").replace('xmp:Rating="5"', 'xmp:Rating="-1"'), encoding="utf-8")
    st = best.stat()
    os.utime(best, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    for _ in range(2):
        run_selection(writer, xmp_config())
        picks = {i for (i,) in writer.db.conn.execute("SELECT image_id FROM picks")}
        assert ids["best"] not in picks
        assert read_xmp(best)["Rating"] == -1  # never overwritten
    assert writer.db.conn.execute("SELECT choice FROM manual_choices WHERE image_id = ?", (ids["best"],)).fetchone() == ("reject",)


@pytest.mark.parametrize(
    ("naming", "names"),
    [("with_extension", ["IMG_1.CR2.xmp"]), ("replace_extension", ["IMG_1.xmp"]), ("both", ["IMG_1.CR2.xmp", "IMG_1.xmp"])],
)
def test_sidecar_naming_follows_the_photo_tools(naming: str, names: list[str]) -> None:
    assert [p.name for p in sidecar_paths("/p/IMG_1.CR2", naming)] == names  # type: ignore[arg-type]


def test_both_namings_are_written(writer: StoreWriter, photo_dir: Path, read_xmp) -> None:
    library(writer, photo_dir)
    run_selection(writer, xmp_config(xmp_naming="both"))
    assert read_xmp(photo_dir / "best.jpg.xmp")["Rating"] == read_xmp(photo_dir / "best.xmp")["Rating"] == 5


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_album_folder_follows_the_picks(writer: StoreWriter, photo_dir: Path, tmp_path: Path, link: str) -> None:
    ids = library(writer, photo_dir)
    album = tmp_path / "album"
    album.mkdir()
    (album / "notes.txt").write_text("mine")
    config = Config(export=ExportConfig(folder=album, link=link))  # type: ignore[arg-type]
    run_selection(writer, config)
    assert sorted(p.name for p in album.iterdir() if not p.name.startswith(".")) == ["best.jpg", "lone.jpg", "notes.txt"]
    if link == "symlink":
        assert os.readlink(album / "best.jpg") == str(photo_dir / "best.jpg")
    else:
        assert (album / "best.jpg").stat().st_ino == (photo_dir / "best.jpg").stat().st_ino
    writer.call(lambda db: db.conn.execute("INSERT INTO manual_choices VALUES (?, 'reject', 'cli', 0)", (ids["best"],)))
    writer.call(lambda db: db.conn.execute("UPDATE images SET updated_at = updated_at + 1e6 WHERE id = ?", (ids["best"],)))
    run_selection(writer, config)
    assert sorted(p.name for p in album.iterdir() if not p.name.startswith(".")) == ["good.jpg", "lone.jpg", "notes.txt"]


def test_album_folder_inside_a_watched_folder_is_refused_unless_ignored(photo_dir: Path) -> None:
    inside = photo_dir / "album"
    config = Config(photos=(PhotoFolder(photo_dir),), export=ExportConfig(folder=inside))
    with pytest.raises(ConfigError, match="export.folder.*inside the watched folder"):
        check_export_folder(config)
    assert check_export_folder(Config(photos=(PhotoFolder(photo_dir),), ignore_patterns=("album",), export=ExportConfig(folder=inside))) == inside.resolve()


def test_raw_and_jpeg_share_one_lightroom_sidecar_and_both_get_links(writer: StoreWriter, photo_dir: Path, tmp_path: Path, read_xmp) -> None:
    for name, groups in (("IMG_1.JPG", {"aesthetic": 0.7}), ("IMG_1.CR2", {})):
        (photo_dir / name).write_bytes(b"x")
        writer.call(lambda db, n=name, g=groups: insert_photo(db, SyntheticPhoto(str(photo_dir / n), T0, g, "00ff00ff00ff00ff" if g else None)))
    album = tmp_path / "album"
    config = Config(export=ExportConfig(folder=album, xmp=True, xmp_naming="replace_extension"))
    for _ in range(2):
        run_selection(writer, config, full=True)
        assert (read_xmp(photo_dir / "IMG_1.xmp")["Rating"], read_xmp(photo_dir / "IMG_1.xmp")["Label"]) == (4, "Pick")
        assert writer.db.conn.execute("SELECT count(*) FROM xmp_written WHERE hand_rating IS NOT NULL").fetchone()[0] == 0
    assert sorted(p.name for p in album.iterdir() if not p.name.startswith(".")) == ["IMG_1.CR2", "IMG_1.JPG"]
    assert writer.db.conn.execute("SELECT count(*) FROM manual_choices").fetchone()[0] == 0


def test_export_companions_match_the_exact_stem_not_a_like_wildcard(writer: StoreWriter, photo_dir: Path, tmp_path: Path) -> None:
    # one burst: the picked JPEG, its RAW, an edit saved beside it and a RAW whose name differs where
    # LIKE's '_' matched any character; all in one moment and one cluster
    for name, groups in (("IMG_1.JPG", {"aesthetic": 0.9}), ("IMG_1.CR2", {}), ("IMG_1.edit.jpg", {"aesthetic": 0.5}),
                         ("IMGx1.cr2", {"aesthetic": 0.4})):
        (photo_dir / name).write_bytes(b"x")
        writer.call(lambda db, n=name, g=groups: insert_photo(db, SyntheticPhoto(str(photo_dir / n), T0, g, "00ff00ff00ff00ff" if g else None)))
    album = tmp_path / "album"
    run_selection(writer, Config(export=ExportConfig(folder=album)), full=True)
    clusters = set(writer.db.conn.execute("SELECT moment, cluster FROM images WHERE path NOT LIKE '%.CR2'").fetchall())
    assert len(clusters) == 1  # the wrong stems were in the pick's cluster, where the old pattern matched them
    assert sorted(p.name for p in album.iterdir() if not p.name.startswith(".")) == ["IMG_1.CR2", "IMG_1.JPG"]


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_sync_link_folder_keeps_the_links_a_person_put_there(writer: StoreWriter, photo_dir: Path, tmp_path: Path, link: str) -> None:
    ids = library(writer, photo_dir)
    album = tmp_path / "album"
    album.mkdir()
    config = Config(export=ExportConfig(folder=album, link=link))  # type: ignore[arg-type]
    run_selection(writer, config)
    # a person adds their own: a hard link of a library photo, a symlink to it, a hard-linked file from elsewhere
    elsewhere = tmp_path / "elsewhere.jpg"
    elsewhere.write_bytes(b"mine")
    os.link(photo_dir / "poor.jpg", album / "my-favourite.jpg")
    os.symlink(photo_dir / "good.jpg", album / "also-mine.jpg")
    os.link(elsewhere, album / "elsewhere.jpg")
    writer.call(lambda db: db.conn.execute("INSERT INTO manual_choices VALUES (?, 'reject', 'cli', 0)", (ids["best"],)))
    writer.call(lambda db: db.conn.execute("UPDATE images SET updated_at = updated_at + 1e6 WHERE id = ?", (ids["best"],)))
    run_selection(writer, config)
    names = sorted(p.name for p in album.iterdir() if not p.name.startswith("."))
    assert names == ["also-mine.jpg", "elsewhere.jpg", "good.jpg", "lone.jpg", "my-favourite.jpg"]  # keepers' best.jpg went
    assert (album / "my-favourite.jpg").stat().st_ino == (photo_dir / "poor.jpg").stat().st_ino


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_an_album_folder_filled_before_links_were_recorded_is_still_kept_in_sync(writer: StoreWriter, photo_dir: Path,
                                                                                 tmp_path: Path, link: str) -> None:
    ids = library(writer, photo_dir)
    album = tmp_path / "album"
    album.mkdir()
    config = Config(export=ExportConfig(folder=album, link=link))  # type: ignore[arg-type]
    run_selection(writer, config)
    (album / ".keepers-links.json").unlink()  # as an older keepers left it
    (album / "notes.txt").write_text("mine")
    os.link(album / "notes.txt", tmp_path / "notes-backup.txt")  # a person's file with two links, not a photo
    os.symlink(tmp_path / "notes-backup.txt", album / "my-link.txt")  # and a link of theirs
    writer.call(lambda db: db.conn.execute("INSERT INTO manual_choices VALUES (?, 'reject', 'cli', 0)", (ids["best"],)))
    writer.call(lambda db: db.conn.execute("UPDATE images SET updated_at = updated_at + 1e6 WHERE id = ?", (ids["best"],)))
    run_selection(writer, config)
    assert sorted(p.name for p in album.iterdir() if not p.name.startswith(".")) == ["good.jpg", "lone.jpg", "my-link.txt", "notes.txt"]


def test_a_persons_colour_label_in_an_unrated_lightroom_sidecar_is_kept_while_picked_and_after(
        writer: StoreWriter, photo_dir: Path, read_xmp) -> None:
    ids = library(writer, photo_dir)
    sidecar = photo_dir / "best.xmp"  # Lightroom's naming
    sidecar.write_text(LIGHTROOM_SIDECAR.format(rating=""), encoding="utf-8")
    config = xmp_config(xmp_naming="replace_extension")
    run_selection(writer, config)
    fields = read_xmp(sidecar)
    assert (fields["Rating"], fields["Label"]) == (5, "Red")  # keepers' stars; the person's label, not Pick
    assert str(fields["Version"]) == "15.3" and fields["Subject"] == "beach" and fields["HistoryAction"] == "saved"
    # the photo leaves the album (rejected in keepers): the rating follows, the label is still the person's
    writer.call(lambda db: db.conn.execute("INSERT INTO manual_choices VALUES (?, 'reject', 'cli', 0)", (ids["best"],)))
    writer.call(lambda db: db.conn.execute("UPDATE images SET updated_at = updated_at + 1e6 WHERE id = ?", (ids["best"],)))
    run_selection(writer, config)
    assert ids["best"] not in {i for (i,) in writer.db.conn.execute("SELECT image_id FROM picks")}
    fields = read_xmp(sidecar)
    assert (fields["Rating"], fields["Label"]) == (-1, "Red")


def test_a_persons_colour_label_in_an_exiftool_sidecar_is_never_replaced_by_pick_nor_deleted(
        writer: StoreWriter, photo_dir: Path, read_xmp) -> None:
    ids = library(writer, photo_dir)
    sidecar = exiftool_sidecar(photo_dir / "lone.jpg.xmp", "-XMP-xmp:Label=Red", "-XMP-dc:Subject=trip")
    run_selection(writer, xmp_config())
    assert (read_xmp(sidecar)["Rating"], read_xmp(sidecar)["Label"]) == (4, "Red")
    # keepers' own label on another photo comes and goes as before
    assert read_xmp(photo_dir / "best.jpg.xmp")["Label"] == "Pick"
    writer.call(lambda db: db.conn.execute("INSERT INTO manual_choices VALUES (?, 'reject', 'cli', 0)", (ids["lone"],)))
    writer.call(lambda db: db.conn.execute("UPDATE images SET updated_at = updated_at + 1e6 WHERE id = ?", (ids["lone"],)))
    run_selection(writer, xmp_config())
    fields = read_xmp(sidecar)
    assert (fields["Rating"], fields["Label"], fields["Subject"]) == (-1, "Red", "trip")
    # and a person who sets a label on a sidecar keepers wrote keeps it too
    good = photo_dir / "good.jpg.xmp"
    good.write_text(good.read_text(encoding="utf-8").replace('xmp:Rating="3"', 'xmp:Rating="3" xmp:Label="Green"'), encoding="utf-8")
    writer.call(lambda db: db.conn.execute("INSERT INTO manual_choices VALUES (?, 'pin', 'cli', 0)", (ids["good"],)))
    writer.call(lambda db: db.conn.execute("UPDATE images SET updated_at = updated_at + 1e6 WHERE id = ?", (ids["good"],)))
    run_selection(writer, xmp_config())
    assert ids["good"] in {i for (i,) in writer.db.conn.execute("SELECT image_id FROM picks")}
    assert read_xmp(good)["Label"] == "Green"


def test_with_both_namings_a_persons_rating_in_one_is_what_the_other_shows(writer: StoreWriter, photo_dir: Path, read_xmp) -> None:
    ids = library(writer, photo_dir)
    # a Lightroom user rated the best photo 2 stars before keepers ran (its formula says 5)
    (photo_dir / "best.xmp").write_text(LIGHTROOM_SIDECAR.format(rating='\n   xmp:Rating="2"'), encoding="utf-8")
    config = xmp_config(xmp_naming="both")
    run_selection(writer, config)
    assert read_xmp(photo_dir / "best.xmp")["Rating"] == 2
    assert read_xmp(photo_dir / "best.jpg.xmp")["Rating"] == 2  # darktable shows the person's stars, not keepers' 5
    # later the person rates the lone photo 3 stars in darktable, over keepers' own sidecar
    lone_dt, lone_lr = photo_dir / "lone.jpg.xmp", photo_dir / "lone.xmp"
    assert read_xmp(lone_dt)["Rating"] == read_xmp(lone_lr)["Rating"] == 4
    lone_dt.write_text(lone_dt.read_text(encoding="utf-8").replace('xmp:Rating="4"', 'xmp:Rating="3"'), encoding="utf-8")
    touch_later(lone_dt)
    for _ in range(2):
        run_selection(writer, config)
        assert read_xmp(lone_dt)["Rating"] == read_xmp(lone_lr)["Rating"] == 3
    assert writer.db.conn.execute("SELECT count(*) FROM manual_choices WHERE image_id IN (?, ?)",
                                  (ids["best"], ids["lone"])).fetchone()[0] == 0  # 2 and 3 stars neither pin nor reject


def test_rating_zero_is_unrated_and_darktables_one_star_import_default_is_not_a_persons_rating(
        writer: StoreWriter, photo_dir: Path, read_xmp) -> None:
    ids = library(writer, photo_dir)
    exiftool_sidecar(photo_dir / "good.jpg.xmp", "-XMP-xmp:Rating=0")  # XMP's "unrated"
    lone = photo_dir / "lone.jpg.xmp"
    lone.write_text(DARKTABLE_SIDECAR.format(rating=1, photo="lone.jpg"), encoding="utf-8")  # just imported
    (photo_dir / "poor.xmp").write_text(LIGHTROOM_SIDECAR.format(rating='\n   xmp:Rating="1"'), encoding="utf-8")
    run_selection(writer, xmp_config())  # darktable's naming: poor.xmp is not read yet
    assert read_xmp(photo_dir / "good.jpg.xmp")["Rating"] == 3
    fields = read_xmp(lone)
    assert (fields["Rating"], fields["Label"]) == (4, "Pick")
    assert fields["Xmp_version"] == 5 and fields["DerivedFrom"] == "lone.jpg" and fields["Auto_presets_applied"] == 1
    assert writer.db.conn.execute("SELECT count(*) FROM xmp_written WHERE hand_rating IS NOT NULL").fetchone()[0] == 0
    # once keepers wrote darktable's sidecar, one star set there is the person's and stays
    lone.write_text(lone.read_text(encoding="utf-8").replace('xmp:Rating="4"', 'xmp:Rating="1"'), encoding="utf-8")
    touch_later(lone)
    run_selection(writer, xmp_config())
    assert read_xmp(lone)["Rating"] == 1
    assert writer.db.conn.execute("SELECT hand_rating FROM xmp_written WHERE sidecar = ?", (str(lone),)).fetchone() == (1,)
    # one star in a sidecar another tool wrote (Lightroom's) is a person's rating from the start
    run_selection(writer, xmp_config(xmp_naming="replace_extension"), full=True)
    assert read_xmp(photo_dir / "poor.xmp")["Rating"] == 1
    assert writer.db.conn.execute("SELECT hand_rating FROM xmp_written WHERE sidecar = ?", (str(photo_dir / "poor.xmp"),)).fetchone() == (1,)
    assert ids


def test_when_darktable_imports_unrated_its_one_star_is_a_persons_rating(writer: StoreWriter, photo_dir: Path, read_xmp) -> None:
    ids = library(writer, photo_dir)
    lone = photo_dir / "lone.jpg.xmp"
    lone.write_text(DARKTABLE_SIDECAR.format(rating=1, photo="lone.jpg"), encoding="utf-8")
    run_selection(writer, xmp_config(xmp_darktable_import_rating=0))
    assert read_xmp(lone)["Rating"] == 1
    assert writer.db.conn.execute("SELECT image_id, hand_rating FROM xmp_written WHERE sidecar = ?", (str(lone),)).fetchone() \
        == (ids["lone"], 1)
