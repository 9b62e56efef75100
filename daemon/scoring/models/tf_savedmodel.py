"""MUSIQ and VILA: TF SavedModels called through their serving signature.

Both take the *encoded* image (a scalar string tensor of JPEG bytes) and
return one score. We re-encode the decoded, EXIF-oriented image at the size
the model expects, so the model sees what the other scorers see. Outputs are
normalised by the model's range (MUSIQ SPAQ/KonIQ/PaQ2PiQ 0..100, MUSIQ AVA
1..10, VILA 0..1) and the raw value is kept.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from PIL import Image

from .common import LearnedScorer, ModelLoadError, SpecLike, configure_tf_threads

if TYPE_CHECKING:
    from ...imaging.decode import Decoded

log = logging.getLogger(__name__)

#: long side (pixels) each adapter re-encodes at, unless the catalog entry's
#: ``input:`` says otherwise (``long_side``, or ``short_side``). MUSIQ is
#: multi-scale and takes any size, but scores best near the size of the data it
#: was trained on (the shipped catalog sets it per model); VILA resizes to
#: 224x224 inside its graph.
DEFAULT_IMAGE_SIZE = {"musiq": 512, "vila": 224}
#: output tensor name of the serving signature
DEFAULT_OUTPUT_KEY = {"musiq": "output_0", "vila": "predictions"}
#: the ``input:`` keys these adapters read (max_side and image_size: older names of long_side)
INPUT_KEYS = ("long_side", "short_side", "max_side", "image_size", "signature", "output_key", "batch_size", "version")


def encode_jpeg(rgb: np.ndarray, long_edge: int | None, quality: int = 95, *, short_edge: int | None = None) -> bytes:
    """JPEG bytes of an HxWx3 uint8 image, scaled down so its long side is at most
    ``long_edge`` (or, with ``short_edge``, its short side at most that)."""
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
    scale = 1.0
    if short_edge and min(image.size) > short_edge:
        scale = short_edge / min(image.size)
    elif long_edge and max(image.size) > long_edge:
        scale = long_edge / max(image.size)
    if scale < 1.0:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


class SavedModelScorer(LearnedScorer):
    """A TF SavedModel scorer for the ``musiq`` and ``vila`` adapters."""

    def __init__(self, spec: SpecLike, path: Path, *, threads: int = 0, version: str | None = None):
        super().__init__(spec, version)
        family = "vila" if spec.adapter.lower().startswith("vila") else "musiq"
        opts = self.options
        unknown = sorted(set(opts) - set(INPUT_KEYS), key=str)
        if unknown:
            raise ModelLoadError(spec.name, path, f"its catalog entry has the unknown input key {unknown[0]!r}",
                                 f"The {family} adapter reads input: {', '.join(INPUT_KEYS[:2] + INPUT_KEYS[4:])}.")
        self.short_side = int(opts["short_side"]) if opts.get("short_side") else None
        self.image_size = int(opts.get("long_side", opts.get("max_side", opts.get("image_size", DEFAULT_IMAGE_SIZE[family]))))
        self.output_key = str(opts.get("output_key", DEFAULT_OUTPUT_KEY[family]))
        signature_name = str(opts.get("signature", "serving_default"))
        configure_tf_threads(threads)
        import tensorflow as tf

        self._tf = tf
        path = Path(path)
        if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
            raise ModelLoadError(spec.name, path, "is not a TF SavedModel folder (no saved_model.pb)",
                                 "Point the source at the unpacked SavedModel folder, or clear the cache and fetch again.")
        try:
            self._loaded = tf.saved_model.load(str(path))
        except Exception as exc:  # TF raises many types for a corrupt model
            raise ModelLoadError(spec.name, path, f"TensorFlow could not load the SavedModel: {exc}",
                                 "Clear the model's cache folder and fetch it again.") from exc
        signatures = getattr(self._loaded, "signatures", {})
        if signature_name not in signatures:
            raise ModelLoadError(spec.name, path, f"has no {signature_name!r} signature (has: {', '.join(signatures) or 'none'})",
                                 "Set input.signature in the model's catalog entry to one it has.")
        self._fn = signatures[signature_name]
        inputs = self._fn.structured_input_signature[1]
        if len(inputs) != 1:
            raise ModelLoadError(spec.name, path, f"signature {signature_name!r} takes {len(inputs)} inputs; expected one string tensor",
                                 "Use a MUSIQ/VILA SavedModel that takes encoded image bytes.")
        (self._input_name, input_spec), = inputs.items()
        if input_spec.dtype != tf.string:
            raise ModelLoadError(spec.name, path, f"signature input {self._input_name!r} is {input_spec.dtype.name}, not string",
                                 "Use a MUSIQ/VILA SavedModel that takes encoded image bytes.")
        outputs = self._fn.structured_outputs
        if self.output_key not in outputs:
            if len(outputs) == 1:
                self.output_key = next(iter(outputs))
            else:
                raise ModelLoadError(spec.name, path, f"signature has no output {self.output_key!r} (has: {', '.join(outputs)})",
                                     "Set input.output_key in the model's catalog entry to the score output.")
        log.debug("%s: SavedModel input %r, output %r, size %d", spec.name, self._input_name, self.output_key, self.image_size)

    def _raw_batch(self, images: Sequence["Decoded"]) -> list[float]:
        # The serving signatures take one scalar string: no batch dimension.
        tf = self._tf
        out: list[float] = []
        for image in images:
            data = encode_jpeg(image.rgb, self.image_size, short_edge=self.short_side)
            result: Any = self._fn(**{self._input_name: tf.constant(data)})
            value = np.asarray(result[self.output_key]).reshape(-1)
            if value.size == 0:
                raise RuntimeError(f"model {self.name!r} returned an empty {self.output_key!r} output")
            out.append(float(value[0]))
        return out

    def close(self) -> None:
        self._fn = None
        self._loaded = None
