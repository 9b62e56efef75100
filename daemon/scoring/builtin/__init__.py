"""The built-in scorers: always available, offline, each a real measurement.

``builtin_scorers(config)`` builds the ones named in ``config.scorers`` in that
order; ``faces`` fetches its face models through the hub as it is built (see
faces.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ...errors import ConfigError
from ..base import Scorer
from .brisque import Brisque
from .compression import Compression
from .faces import Faces
from .technical import Colourfulness, Contrast, Exposure, Noise, Sharpness

if TYPE_CHECKING:
    from ...config import Config
    from ...store.writer import StoreWriter

BUILTIN: dict[str, Callable[[], Scorer]] = {
    "sharpness": Sharpness,
    "exposure": Exposure,
    "contrast": Contrast,
    "noise": Noise,
    "colourfulness": Colourfulness,
    "compression": Compression,
    "brisque": Brisque,
    "faces": Faces,
}


def builtin_scorers(config: "Config", writer: "StoreWriter | None" = None) -> list[Scorer]:
    """The scorers ``config.scorers`` names. Raises ConfigError for an unknown name.
    ``writer``: where the face models' loading is recorded (None: not recorded)."""
    out: list[Scorer] = []
    for i, name in enumerate(config.scorers):
        if name not in BUILTIN:
            raise ConfigError(config.source_file, f"scorers[{i}]",
                              f"unknown scorer {name!r}; the built-in scorers are {', '.join(BUILTIN)}")
        out.append(Faces.load(config, writer) if name == "faces" else BUILTIN[name]())
    return out


__all__ = ["BUILTIN", "builtin_scorers", "Brisque", "Colourfulness", "Compression", "Contrast", "Exposure", "Faces", "Noise", "Sharpness"]
