"""Tiny models the tests build on the spot (never downloaded).

Frameworks are imported inside each builder so that importing this module
(a pytest plugin) stays cheap.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path


def build_musiq_savedmodel(folder: Path, output_range: tuple[float, float] = (0.0, 100.0)) -> Path:
    """A SavedModel with MUSIQ's serving signature.

    ``serving_default`` takes a scalar string ``image_bytes_tensor`` (an
    encoded JPEG/PNG) and returns ``output_0``: the decoded image's mean
    brightness mapped onto ``output_range`` (black → lo, white → hi), so a
    test can tell the model really ran on the image.
    """
    import tensorflow as tf

    lo, hi = float(output_range[0]), float(output_range[1])

    class MusiqLike(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="image_bytes_tensor")])
        def serve(self, image_bytes_tensor: "tf.Tensor") -> dict[str, "tf.Tensor"]:
            image = tf.io.decode_image(image_bytes_tensor, channels=3, expand_animations=False)
            brightness = tf.reduce_mean(tf.cast(image, tf.float32)) / 255.0
            return {"output_0": tf.reshape(lo + (hi - lo) * brightness, [1])}

    module = MusiqLike()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    return Path(folder)


def expected_musiq_score(image_rgb: "object", output_range: tuple[float, float] = (0.0, 100.0)) -> float:
    """What :func:`build_musiq_savedmodel`'s model returns for an HxWx3 uint8 array."""
    import numpy as np

    lo, hi = output_range
    return float(lo + (hi - lo) * float(np.asarray(image_rgb, dtype=np.float32).mean()) / 255.0)


def save_torch_state_dict(path: Path, seed: int = 0) -> Path:
    """A small torch state dict (a 2-layer MLP: 12 → 4 → 1), saved with torch.save."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(12, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    torch.save(net.state_dict(), path)
    return Path(path)


def save_safetensors(path: Path, seed: int = 0) -> Path:
    """A small safetensors file with two tensors (``proj.weight`` 8×16, ``proj.bias`` 8)."""
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    save_file({"proj.weight": rng.standard_normal((8, 16)).astype(np.float32),
               "proj.bias": rng.standard_normal(8).astype(np.float32)}, str(path))
    return Path(path)


def random_blob(size: int, seed: int = 0) -> bytes:
    """``size`` bytes of reproducible noise (stands in for a model file where its content does not matter)."""
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tar_gz_of_dir(folder: Path) -> bytes:
    """A .tar.gz of a folder's contents (members relative to it: what tfhub serves)."""
    folder = Path(folder)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buf.getvalue()


def evil_tar_gz(escape_name: str = "../escaped.txt") -> bytes:
    """A .tar.gz holding a harmless ``saved_model.pb`` and a member named ``escape_name`` (``../``)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("saved_model.pb", b"not really a model"), (escape_name, b"written outside the cache")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
