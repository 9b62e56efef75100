"""A small preview of a photo: textual-image draws it with the best method the
terminal offers (sixel, kitty graphics, half cells, or unicode blocks); when
the file cannot be read, a line of text says why."""

from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image as PILImage
from textual.app import ComposeResult
from textual.containers import Container
from textual.widgets import Static

try:  # imported before the app starts: textual-image asks the terminal what it can draw
    from textual_image.widget import Image as TerminalImage
except Exception as exc:  # pragma: no cover - a terminal textual-image cannot query
    TerminalImage = None  # type: ignore[assignment,misc]
    _IMPORT_ERROR: str | None = f"textual-image unavailable: {exc}"
else:
    _IMPORT_ERROR = None

log = logging.getLogger(__name__)

#: long edge, in pixels, of the preview decoded in the worker thread
PREVIEW_PIXELS = 320


HEIF_SUFFIXES = (".heic", ".heif", ".hif")


def _register_heif() -> bool:
    """Teach PIL to open HEIC/HEIF (pillow-heif), once; False when it is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    if not getattr(_register_heif, "done", False):
        pillow_heif.register_heif_opener()
        setattr(_register_heif, "done", True)
    return True


def load_preview(path: str | Path) -> PILImage.Image | str:
    """Decode a small RGB preview of ``path`` (JPEG DCT-scaled); on failure, a one-line reason."""
    if str(path).lower().endswith(HEIF_SUFFIXES) and not _register_heif():
        return "no preview: HEIC needs pillow-heif"
    try:
        with PILImage.open(path) as img:
            img.draft("RGB", (PREVIEW_PIXELS, PREVIEW_PIXELS))
            img.thumbnail((PREVIEW_PIXELS, PREVIEW_PIXELS))
            return img.convert("RGB")
    except FileNotFoundError:
        return "no preview: the file is not there any more"
    except (OSError, ValueError, PILImage.DecompressionBombError) as exc:
        return f"no preview: {exc}"


class Thumbnail(Container):
    """Shows a decoded preview, or the reason there is none."""

    DEFAULT_CSS = """
    Thumbnail { height: auto; margin-bottom: 1; }
    Thumbnail > Static { color: $text-muted; }
    Thumbnail > .image { width: auto; height: 12; }
    """

    def compose(self) -> ComposeResult:
        yield Static("no photo selected", classes="fallback")

    def show(self, preview: PILImage.Image | str | None) -> None:
        self.remove_children()
        if preview is None:
            self.mount(Static("no photo selected", classes="fallback"))
        elif isinstance(preview, str):
            self.mount(Static(preview, classes="fallback"))
        elif TerminalImage is None:
            self.mount(Static(f"{preview.width}×{preview.height} preview; {_IMPORT_ERROR}", classes="fallback"))
        else:
            self.mount(TerminalImage(preview, classes="image"))
