"""XMP sidecars: read a rating, merge keepers' rating and label into a sidecar
without disturbing anything else in it.

darktable and digiKam look for ``IMG_1.CR2.xmp``; Lightroom and Capture One
for ``IMG_1.xmp``. ``xmp:Rating`` is 1..5 (-1 = rejected) and ``xmp:Label``
carries keepers' "Pick" / "Reject".

How keepers reads what a person wrote:

- ``xmp:Rating="0"`` is XMP's "unrated" (darktable itself replaces it with its
  import default): it is read as no rating.
- A 1-star rating in a darktable sidecar keepers has not written yet is
  darktable's default on import (its "initial rating" is 1 star; the config's
  ``export.xmp_darktable_import_rating`` names another), not a choice:
  keepers writes its own rating there. Once keepers has written a sidecar,
  any rating a person sets in it, 1 star included, is theirs.
- ``xmp:Label`` is keepers' only while it holds the label keepers wrote: a
  colour label a person set (Lightroom's and Capture One's ``Red``) is never
  replaced or removed.
"""

from __future__ import annotations

import io
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Literal

Naming = Literal["with_extension", "replace_extension", "both"]

NS_X = "adobe:ns:meta/"
NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS_XMP = "http://ns.adobe.com/xap/1.0/"
_RATING = f"{{{NS_XMP}}}Rating"
_LABEL = f"{{{NS_XMP}}}Label"
_DESCRIPTION = f"{{{NS_RDF}}}Description"
NS_DARKTABLE = "http://darktable.sf.net/"
#: darktable's default rating on import ("initial rating" in its import settings)
DARKTABLE_IMPORT_RATING = 1
_ABOUT = f"{{{NS_RDF}}}about"

PICK_LABEL = "Pick"
REJECT_LABEL = "Reject"

_EMPTY = (
    f'<x:xmpmeta xmlns:x="{NS_X}"><rdf:RDF xmlns:rdf="{NS_RDF}">'
    f'<rdf:Description rdf:about="" xmlns:xmp="{NS_XMP}"/></rdf:RDF></x:xmpmeta>'
)
#: prefixes XMP readers expect, so a rewritten sidecar keeps familiar names
_KNOWN_PREFIXES = {
    "x": NS_X,
    "rdf": NS_RDF,
    "xmp": NS_XMP,
    "dc": "http://purl.org/dc/elements/1.1/",
    "darktable": "http://darktable.sf.net/",
    "digiKam": "http://www.digikam.org/ns/1.0/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "tiff": "http://ns.adobe.com/tiff/1.0/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "crs": "http://ns.adobe.com/camera-raw-settings/1.0/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
}


class SidecarError(Exception):
    """A sidecar exists but is not XMP keepers can merge into (it is then left alone)."""


def sidecar_paths(photo: str | Path, naming: Naming) -> list[Path]:
    """Where the sidecars of ``photo`` go under ``naming`` (one or two paths)."""
    photo = Path(photo)
    with_ext = photo.with_name(photo.name + ".xmp")
    replaced = photo.with_suffix(".xmp")
    if naming == "with_extension":
        return [with_ext]
    if naming == "replace_extension":
        return [replaced]
    return [with_ext] if with_ext == replaced else [with_ext, replaced]


def rating_for(composite: float | None, *, rejected: bool = False) -> int | None:
    """Stars from a composite 0..1: 1 + ⌊5·c⌋, at most 5; -1 when rejected; None without a score."""
    if rejected:
        return -1
    if composite is None:
        return None
    return max(1, min(5, 1 + int(composite * 5)))


def _parse(path: Path) -> tuple[ET.ElementTree, dict[str, str]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SidecarError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    prefixes: dict[str, str] = {}
    try:
        for event, item in ET.iterparse(io.BytesIO(data), events=("start-ns",)):
            prefix, uri = item  # type: ignore[misc]
            prefixes.setdefault(prefix, uri)
        tree = ET.ElementTree(ET.fromstring(data))
    except ET.ParseError as exc:
        raise SidecarError(f"{path}: is not valid XML ({exc}); fix or remove it and keepers will write a new one") from exc
    return tree, prefixes


def _descriptions(root: ET.Element) -> list[ET.Element]:
    return list(root.iter(_DESCRIPTION))


def read_rating(path: Path) -> int | None:
    """The ``xmp:Rating`` of a sidecar (attribute or element form); None when it has
    none or it is 0 (XMP's "unrated")."""
    tree, _ = _parse(path)
    return _rating_of(tree.getroot())


def read_unwritten_rating(path: Path, darktable_import_rating: int = DARKTABLE_IMPORT_RATING) -> int | None:
    """The rating a person set in a sidecar keepers has not written (see the module's notes):
    None when unrated, and for darktable's rating on import (``darktable_import_rating``,
    1 star unless its import settings say otherwise; 0 = none is a default)."""
    tree, _ = _parse(path)
    root = tree.getroot()
    rating = _rating_of(root)
    if rating is not None and rating == darktable_import_rating and _written_by_darktable(root):
        return None
    return rating


def _written_by_darktable(root: ET.Element) -> bool:
    prefix = f"{{{NS_DARKTABLE}}}"
    return any(key.startswith(prefix) for desc in _descriptions(root) for key in desc.attrib) or \
        any(child.tag.startswith(prefix) for desc in _descriptions(root) for child in desc)


def _rating_of(root: ET.Element) -> int | None:
    for desc in _descriptions(root):
        value = desc.get(_RATING)
        if value is None:
            element = desc.find(_RATING)
            value = element.text if element is not None else None
        if value is not None and value.strip():
            try:
                rating = int(float(value.strip()))
            except ValueError:
                return None
            return rating or None  # 0: unrated
    return None


def read_label(path: Path) -> str | None:
    tree, _ = _parse(path)
    for desc in _descriptions(tree.getroot()):
        value = desc.get(_LABEL)
        if value is None:
            element = desc.find(_LABEL)
            value = element.text if element is not None else None
        if value is not None:
            return value
    return None


def _set(desc_list: list[ET.Element], key: str, value: str | None) -> bool:
    """Set (or, with None, remove) a simple property wherever it is; new ones go on the first
    Description. Returns whether anything changed."""
    found = changed = False
    for desc in desc_list:
        if key in desc.attrib:
            found = True
            changed = changed or desc.get(key) != value
            if value is None:
                del desc.attrib[key]
            else:
                desc.set(key, value)
        element = desc.find(key)
        if element is not None:
            found = True
            changed = changed or element.text != value
            if value is None:
                desc.remove(element)
            else:
                element.text = value
    if not found and value is not None:
        desc_list[0].set(key, value)
        changed = True
    return changed


def merge_sidecar(path: Path, rating: int | None, label: str | None, *, previous_label: str | None = None) -> str | None:
    """Write ``rating`` and ``label`` into the sidecar at ``path``, creating it if needed;
    returns the label keepers now holds there (None when a person's label stays).

    Every other field of an existing sidecar is kept. The label is keepers' to set
    or remove only while the sidecar has none or has ``previous_label`` (the one
    keepers wrote): a person's own label survives. Written atomically (temp file
    + rename), and only when something changed. Raises SidecarError when an
    existing sidecar cannot be parsed.
    """
    existed = path.exists()
    if existed:
        tree, prefixes = _parse(path)
    else:
        tree, prefixes = ET.ElementTree(ET.fromstring(_EMPTY)), {}
    for prefix, uri in {**_KNOWN_PREFIXES, **prefixes}.items():
        if prefix and not prefix.startswith("ns"):
            try:
                ET.register_namespace(prefix, uri)
            except ValueError:
                pass
    root = tree.getroot()
    descs = _descriptions(root)
    if not descs:
        rdf = root if root.tag == f"{{{NS_RDF}}}RDF" else root.find(f"{{{NS_RDF}}}RDF")
        if rdf is None:
            raise SidecarError(f"{path}: has no rdf:RDF element; it is not an XMP sidecar keepers can merge into")
        desc = ET.SubElement(rdf, _DESCRIPTION, {_ABOUT: ""})
        descs = [desc]
    changed = _set(descs, _RATING, None if rating is None else str(rating))
    current = read_label_from(descs)
    held = label
    if current is not None and current != previous_label:
        held = None  # a person's label: left as it is
    else:
        changed = _set(descs, _LABEL, label) or changed
    if existed and not changed:
        return held
    body = ET.tostring(root, encoding="unicode")
    text = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + body + '\n<?xpacket end="w"?>\n'
    fd, tmp = tempfile.mkstemp(prefix=".keepers-", suffix=".xmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return held


def read_label_from(descs: list[ET.Element]) -> str | None:
    for desc in descs:
        if _LABEL in desc.attrib:
            return desc.get(_LABEL)
        element = desc.find(_LABEL)
        if element is not None:
            return element.text
    return None
