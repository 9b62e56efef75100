"""Loading torch checkpoints without running code from them.

A ``.pt``/``.pth`` file is a pickle; unpickling an arbitrary one runs
whatever callables it names. keepers loads only with
``torch.load(..., weights_only=True)`` (tensors, plain containers, numbers,
and numpy's scalar and dtype types, which training scripts store their
metrics as) or from safetensors, and refuses anything else with an
explanation. TorchScript
archives are loaded with ``torch.jit.load``, which runs TorchScript, not
Python. Import this module only from the torch adapters (it imports torch).
"""

from __future__ import annotations

import importlib
import logging
import pickle
import warnings
import zipfile
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from .common import ModelLoadError, UnsafeCheckpoint

log = logging.getLogger(__name__)

#: keys a training script commonly nests the weights under
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights", "ema")
#: prefixes DataParallel / Lightning / wrappers put in front of every key
PREFIXES = ("module.", "model.", "net.", "backbone.")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".ts", ".torchscript")


def is_torchscript(path: Path) -> bool:
    """True when ``path`` is a TorchScript archive (a zip with a ``code/`` folder)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any("/code/" in name or name.startswith("code/") for name in zf.namelist())


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint file holds: its tensors (unwrapped, wrapper prefixes
    stripped), the training ``config`` saved beside them ({} when none), and
    the file's top-level keys (for messages)."""

    state: dict[str, torch.Tensor]
    config: Mapping[str, Any] = field(default_factory=dict)
    top_keys: tuple[str, ...] = ()


def load_state_dict(model: str, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, unwrapped and without wrapper prefixes.

    Raises UnsafeCheckpoint when the file needs arbitrary unpickling, and
    ModelLoadError when it is not a checkpoint or holds no tensors."""
    return load_checkpoint(model, path).state


def load_checkpoint(model: str, path: Path) -> Checkpoint:
    """The tensors of a checkpoint file and the training config saved with them.

    Raises UnsafeCheckpoint when the file needs arbitrary unpickling, and
    ModelLoadError when it is not a checkpoint or holds no tensors."""
    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            raw: Any = load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise ModelLoadError(model, path, f"is not a readable safetensors file: {exc}",
                                 "Fetch it again, or check that the source serves the right file.") from exc
    else:
        raw = safe_torch_load(model, path)
    state = _unwrap(raw)
    if not state:
        raise ModelLoadError(model, path, "holds no tensors (not a state dict)",
                             "Save the weights with torch.save(model.state_dict(), path).")
    config = raw.get("config") if isinstance(raw, Mapping) else None
    wrapped = isinstance(raw, Mapping) and not all(isinstance(v, torch.Tensor) for v in raw.values())
    top_keys = tuple(str(k) for k in raw) if wrapped else ()
    return Checkpoint(_strip_prefixes(state), config if isinstance(config, Mapping) else {}, top_keys)


def numpy_safe_globals() -> list[Any]:
    """numpy's scalar reconstructor and dtype types, for ``torch.serialization.safe_globals``.

    A numpy scalar (``np.float64(0.71)``, the metric a training script saves)
    pickles as ``numpy._core.multiarray.scalar(dtype, bytes)``; numpy 1.x
    wrote ``numpy.core.multiarray.scalar``. Neither runs code: they rebuild a
    number from its dtype and bytes. Nothing else is allowed (an array needs
    ``_reconstruct`` and ``ndarray``, and stays refused)."""
    import numpy as np

    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25
    numeric = [getattr(dtypes, name) for name in dir(dtypes) if name.endswith("DType")
               and name not in ("ObjectDType", "VoidDType", "StringDType", "StrDType", "BytesDType")] if dtypes else []
    return [(scalar, "numpy._core.multiarray.scalar"), (scalar, "numpy.core.multiarray.scalar"), np.dtype, *numeric]


def safe_torch_load(model: str, path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` (numpy scalars allowed) with errors that say what to do."""
    try:
        with torch.serialization.safe_globals(numpy_safe_globals()):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        for line in str(exc).splitlines():
            if "Unsupported global" in line or "GLOBAL" in line:
                detail = line.strip()
                break
        raise UnsafeCheckpoint(
            model, path,
            f"needs unpickling of arbitrary Python objects to load ({detail}); keepers loads checkpoints only with "
            "weights_only=True, because unpickling runs whatever code the file names, and nothing from this file was run",
            "If you trust the file, re-save just the weights: torch.save(model.state_dict(), 'weights.pt') (or safetensors), "
            "and name the architecture in the catalog entry's input (input: {arch: package.module:Class}), "
            "or export it with torch.jit.script/trace.",
        ) from exc
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise ModelLoadError(model, path, f"is not a torch checkpoint torch can read: {exc}",
                             "Fetch it again, or check that the source serves the right file.") from exc


def _unwrap(obj: Any) -> dict[str, torch.Tensor]:
    for _ in range(3):
        if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return {str(k): v for k, v in obj.items()}
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is None:
                tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
                return tensors
            obj = inner
        else:
            return {}
    return {}


def _strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def load_torchscript(model: str, path: Path) -> nn.Module:
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated upstream but still what users export
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelLoadError(model, path, f"is not a TorchScript archive torch can load: {exc}",
                             "Export it with torch.jit.script(model).save(path) or torch.jit.trace.") from exc
    module.eval()
    return module


def import_architecture(model: str, dotted: str) -> type[nn.Module]:
    """The class named ``package.module:Class`` (an architecture in your own code)."""
    module_name, _, class_name = dotted.partition(":")
    if not module_name or not class_name:
        raise ModelLoadError(model, dotted, "input.arch must look like 'package.module:Class'",
                             "Name the module and the class, separated by a colon.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelLoadError(model, dotted, f"module {module_name!r} cannot be imported: {exc}",
                             "Install the package that defines the architecture, or add its folder to PYTHONPATH.") from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ModelLoadError(model, dotted, f"{module_name} has no torch.nn.Module subclass named {class_name!r}",
                             "Check the spelling of the catalog entry's input.arch.")
    return cls


def load_into(model: str, path: Path, module: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Load ``state`` into ``module`` strictly: every key must match."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()
        raise ModelLoadError(model, path, f"weights do not fit the architecture {type(module).__name__}: "
                             + " ".join(line.strip() for line in first[:3]),
                             "Check that the catalog entry's input.arch (and input.arch_kwargs) match the network the checkpoint was trained with.") from exc
    module.eval()
    return module
