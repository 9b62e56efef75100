"""The optional parts of keepers (pyproject's extras) and how to install one.

keepers is not published on the package index, so ``pip install 'keepers[tf]'``
finds nothing (or somebody else's package): an extra is installed from the
checkout keepers runs from, into the Python that runs it. torch goes first as
a CPU build, pinned: resolved from scratch, ``.[torch]`` pulls the multi-GB
CUDA build.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

#: extra -> the modules it provides
EXTRAS: dict[str, tuple[str, ...]] = {
    "tf": ("tensorflow", "tensorflow_hub", "tf_keras", "kagglehub"),
    "torch": ("torch", "huggingface_hub", "safetensors"),
    "raw": ("rawpy",),
}
#: the torch the Makefile installs; a CPU build from PyTorch's CPU index
TORCH_CPU = "torch==2.13.0"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def extra_for_module(module: str | None) -> str | None:
    """The extra that provides ``module`` (``tensorflow_hub.resolver`` -> ``tf``), or None."""
    root = (module or "").split(".")[0]
    return next((extra for extra, modules in EXTRAS.items() if root in modules), None)


def checkout_dir() -> Path | None:
    """The source checkout keepers runs from (an editable install), or None for an installed copy."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def install_hint(extra: str) -> str:
    """The commands that install ``extra`` into the Python running keepers, as one sentence."""
    pip = f"{shlex.quote(sys.executable)} -m pip install"
    checkout = checkout_dir()
    target = shlex.quote(f"{checkout or '.'}[{extra}]")
    where = "" if checkout else " from your keepers checkout"
    steps = f"{pip} -e {target}" if checkout else f"{pip} {target}"
    if extra == "torch":
        steps = f"{pip} {TORCH_CPU} --index-url {TORCH_CPU_INDEX} (a CPU build first: a plain torch pulls multi-GB CUDA), then {steps}"
    make = " (or use `make test`'s .venv, which has every extra)" if checkout else ""
    return f"install the {extra} extra{where}: {steps}{make}"


__all__ = ["EXTRAS", "extra_for_module", "checkout_dir", "install_hint"]
