"""Tiny learned models for the adapter tests, built on the spot (never downloaded).

Architectures in :mod:`fixtures_models.torch_nets`, named in specs as
``fixtures_models.torch_nets:Class`` (the tests folder is on sys.path under
pytest), stand in for a user's own network code. This module imports no
framework at import time: it is a pytest plugin loaded for every test.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image


# --------------------------------------------------------------------------- images


@dataclass(frozen=True)
class PlainDecoded:
    """What the adapters read from a decoded image (``.rgb``); used where the
    imaging package's own Decoded is not importable yet."""

    rgb: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


def decoded(rgb: np.ndarray) -> Any:
    """A decoded image from an HxWx3 uint8 array."""
    try:
        from daemon.imaging.decode import decode_image
    except ImportError:
        return PlainDecoded(rgb)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "img.png"
        path.write_bytes(buf.getvalue())
        return decode_image(path, size=max(rgb.shape[:2]))


def decode_file(path: Path) -> Any:
    """The decoded image of a file (the imaging package's decoder where it exists)."""
    try:
        from daemon.imaging.decode import decode_image
    except ImportError:
        with Image.open(path) as im:
            return PlainDecoded(np.asarray(im.convert("RGB")))
    return decode_image(path, size=1024)


def flat_image(level: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """A uniform grey image of brightness ``level`` (0..255) with a little texture."""
    rng = np.random.default_rng(level)
    noise = rng.integers(-3, 4, size=(*size, 3))
    return np.clip(level + noise, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- checkpoint files


def save_resnet50_checkpoint(path: Path, *, width: int = 4, outputs: int = 1, wrapped: bool = True) -> Path:
    """A torchvision-layout ResNet-50 state dict (narrow, so it stays small): a fine-tune of
    ``torchvision.models.resnet50`` with its ``fc`` replaced. ``wrapped``: saved as a
    DataParallel training loop does, under ``model_state_dict`` with ``module.`` in front of
    every key, beside the epoch and a numpy metric. (The user's own AVA and Siamese
    checkpoints are built in :mod:`fixtures_models.user_training`.)"""
    import torch

    from daemon.scoring.models.resnet import resnet50

    torch.manual_seed(1)
    net = resnet50(outputs, width=width)
    state = net.state_dict()
    if wrapped:
        state = {"epoch": 12, "model_state_dict": {f"module.{k}": v for k, v in state.items()}, "best_val": np.float64(0.31)}
    torch.save(state, path)
    return path


def save_state_dict(path: Path, class_name: str, **kwargs: Any) -> Path:
    """The state dict of ``torch_nets.<class_name>(**kwargs)``, saved with torch.save."""
    import torch

    from . import torch_nets

    torch.save(getattr(torch_nets, class_name)(**kwargs).state_dict(), path)
    return path


def save_torchscript(path: Path, class_name: str = "TinyRegressor", **kwargs: Any) -> Path:
    """``torch_nets.<class_name>(**kwargs)`` compiled with torch.jit.script and saved."""
    import torch

    from . import torch_nets

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(getattr(torch_nets, class_name)(**kwargs)).save(str(path))
    return path


class Exploit:
    """Unpickling this object runs ``exec`` on its payload: it writes ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def save_malicious_checkpoint(path: Path, marker: Path) -> Path:
    """A checkpoint whose tensors come with an object that runs code when unpickled."""
    import torch

    torch.save({"fc.weight": torch.zeros(1, 4), "payload": Exploit(marker)}, path)
    return path


# --------------------------------------------------------------------------- TF SavedModel


def build_musiq_like_savedmodel(folder: Path, *, output_key: str = "output_0", scale: float = 100.0) -> Path:
    """A SavedModel with MUSIQ's serving signature: one scalar string input
    ``image_bytes_tensor`` (encoded JPEG/PNG), output ``output_0`` = mean
    brightness of the decoded image times ``scale`` / 255 (0..100 for MUSIQ)."""
    import tensorflow as tf

    class Musiqish(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="image_bytes_tensor")])
        def serve(self, image_bytes_tensor: "tf.Tensor") -> dict[str, "tf.Tensor"]:
            image = tf.io.decode_image(image_bytes_tensor, channels=3, expand_animations=False)
            value = tf.reduce_mean(tf.cast(image, tf.float32)) * (scale / 255.0)
            return {output_key: tf.reshape(value, [1])}

    module = Musiqish()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return folder


@pytest.fixture(scope="session")
def musiq_like_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MUSIQ-signature SavedModel folder, built once per session."""
    return build_musiq_like_savedmodel(tmp_path_factory.mktemp("musiq") / "model")
