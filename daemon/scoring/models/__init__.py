"""Learned-model adapters: turn a model the hub fetched into a scorer,
a comparator or an embedder.

``load_adapter(spec, path)`` picks the adapter from the spec's framework,
adapter name and task. TensorFlow and torch are imported only inside the
adapter module that needs them, so importing this package stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Union

from .common import AdapterSpec, LearnedScorer, ModelLoadError, SpecLike, UnsafeCheckpoint, normalise

if TYPE_CHECKING:
    from .torch_models import TorchComparator, TorchEmbedder

    LoadedModel = Union[LearnedScorer, TorchComparator, TorchEmbedder]

__all__ = ["AdapterSpec", "LearnedScorer", "ModelLoadError", "UnsafeCheckpoint", "load_adapter", "normalise", "kind_of"]

TF_ADAPTERS = ("musiq", "vila")
TORCH_FRAMEWORKS = ("torch-state-dict", "torchscript", "safetensors", "torch")


def kind_of(model: object) -> str:
    """'scorer', 'comparator' or 'embedder' for a loaded adapter."""
    if hasattr(model, "compare"):
        return "comparator"
    if hasattr(model, "embed_batch"):
        return "embedder"
    return "scorer"


def load_adapter(spec: SpecLike, path: Path | str, *, threads: int = 0, version: str | None = None,
                 decode_size: int = 1024) -> "LoadedModel":
    """Load the model at ``path`` (a file or folder the hub fetched) as the adapter ``spec`` asks for.

    Raises ModelLoadError (UnsafeCheckpoint for a pickle that would run code)
    when the files cannot become a working model."""
    path = Path(path)
    framework = (spec.framework or "").lower()
    adapter = (spec.adapter or "").lower()
    if framework == "tf-savedmodel" or adapter.split("-")[0] in TF_ADAPTERS:
        from .tf_savedmodel import SavedModelScorer

        return SavedModelScorer(spec, path, threads=threads, version=version)
    if framework == "tflite":
        raise ModelLoadError(spec.name, path, "is one of the face models the built-in faces scorer loads itself",
                             "Remove it from models.enabled; list `faces` in scorers instead.")
    if framework == "onnx":
        raise ModelLoadError(spec.name, path, "is an ONNX model, and keepers has no ONNX runtime adapter",
                             "Export the model as TorchScript or a torch state dict, or disable it in models.enabled.")
    if framework and framework not in TORCH_FRAMEWORKS:
        raise ModelLoadError(spec.name, path, f"framework {spec.framework!r} is not one keepers can load",
                             f"Use one of: tf-savedmodel, {', '.join(TORCH_FRAMEWORKS)}.")
    from .torch_models import TorchComparator, TorchEmbedder, TorchScorer

    if spec.task == "comparator" or adapter == "comparator":
        return TorchComparator(spec, path, threads=threads, version=version, decode_size=decode_size)
    if spec.task == "embedding" or adapter == "embedding":
        return TorchEmbedder(spec, path, threads=threads, version=version)
    return TorchScorer(spec, path, threads=threads, version=version)
