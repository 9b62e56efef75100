"""Photo previews for the detail pane: decoded small, or a reason instead."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tui.widgets.thumbnail import PREVIEW_PIXELS, load_preview


def test_a_large_jpeg_is_decoded_no_bigger_than_the_preview(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", (3000, 2000), (120, 80, 40)).save(path, quality=80)
    preview = load_preview(path)
    assert isinstance(preview, Image.Image)
    assert max(preview.size) == PREVIEW_PIXELS and preview.size[0] > preview.size[1] and preview.mode == "RGB"


def test_a_heic_photo_gets_a_preview(tmp_path: Path) -> None:
    import pillow_heif

    path = tmp_path / "phone.heic"
    pillow_heif.from_pillow(Image.new("RGB", (640, 480), (10, 200, 10))).save(path)
    preview = load_preview(path)
    assert isinstance(preview, Image.Image) and preview.size == (320, 240)


def test_a_broken_file_gives_a_reason_instead_of_a_preview(tmp_path: Path) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"this is not an image")
    reason = load_preview(path)
    assert isinstance(reason, str) and reason.startswith("no preview:") and "cannot identify" in reason
    assert load_preview(tmp_path / "gone.jpg") == "no preview: the file is not there any more"
