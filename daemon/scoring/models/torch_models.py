"""Torch adapters: a regression scorer (the AVA ResNet-50, TorchScript files,
any ``package.module:Class``), the pairwise comparator, and image embeddings.

Checkpoints load through :mod:`.torch_load` only (weights_only or
safetensors). Batches are stacked into one forward pass. Import this module
only when a torch model is enabled (it imports torch).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from .common import LearnedScorer, ModelLoadError, SpecLike, configure_torch_threads, options_of, single_file
from .torch_load import (CHECKPOINT_SUFFIXES, import_architecture, is_torchscript, load_checkpoint, load_into,
                         load_state_dict, load_torchscript)

if TYPE_CHECKING:
    from ...imaging.decode import Decoded

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_ADAPTERS = ("clip-vision", "clip")


@dataclass(frozen=True)
class BuiltNet:
    """A network ready to run: the module (eval mode), the file it came from, the
    layout it was read as, and the preprocessing its checkpoint names (None: the
    catalog entry's ``input`` decides)."""

    module: nn.Module
    file: Path
    layout: str
    preprocess: Mapping[str, Any] | None = None


TORCHSCRIPT_LAYOUT = "TorchScript archive"
ARCH_LAYOUT = "input.arch (package.module:Class)"
RESNET_LAYOUT = "torchvision ResNet-50 state dict (conv1.*, layer1-4.*, fc.*)"


def build_module(spec: SpecLike, path: Path, role: str = "scorer") -> BuiltNet:
    """The network for ``spec`` (a ``role``: scorer, comparator or embedder) with its weights loaded.

    Layouts, in the order tried: a TorchScript archive; ``input.arch``; the user's
    AVA or Siamese training checkpoint; a torchvision ResNet-50 state dict (scorers).
    Raises ModelLoadError naming the layouts tried and what the file's keys look like."""
    opts = options_of(spec)
    if spec.adapter in CLIP_ADAPTERS:
        return _build_clip(spec, Path(path))
    file = Path(path) / str(opts["file"]) if opts.get("file") else single_file(spec.name, Path(path), CHECKPOINT_SUFFIXES)
    if spec.framework == "torchscript" or is_torchscript(file):
        return BuiltNet(load_torchscript(spec.name, file), file, TORCHSCRIPT_LAYOUT)
    checkpoint = load_checkpoint(spec.name, file)
    arch = opts.get("arch")
    if arch:
        cls = import_architecture(spec.name, str(arch))
        kwargs = dict(opts.get("arch_kwargs") or {})
        try:
            module = cls(**kwargs)
        except TypeError as exc:
            raise ModelLoadError(spec.name, file, f"{arch} could not be built with input.arch_kwargs {kwargs}: {exc}",
                                 "Set the catalog entry's input.arch_kwargs to the constructor arguments it was trained with.") from exc
        return BuiltNet(load_into(spec.name, file, module, checkpoint.state), file, ARCH_LAYOUT)
    from .checkpoints import AVA_LAYOUT, SIAMESE_LAYOUT, build_ava, build_siamese, layout_of, preprocess_options

    found = layout_of(checkpoint.state)
    fits = {"ava": "scorer", "siamese": "comparator"}.get(found or "")
    if fits and fits != role:
        raise ModelLoadError(spec.name, file, f"is a {AVA_LAYOUT if found == 'ava' else SIAMESE_LAYOUT}, which makes a {fits}, "
                             f"but model {spec.name!r} (task {spec.task}) needs a {role}",
                             f"Point a {fits} model's source at it instead (ava-resnet50 for the AVA scorer, "
                             "siamese-comparator for the comparator).")
    if found == "ava":
        return BuiltNet(build_ava(spec.name, file, checkpoint), file, AVA_LAYOUT, preprocess_options(checkpoint.config))
    if found == "siamese":
        return BuiltNet(build_siamese(spec.name, file, checkpoint), file, SIAMESE_LAYOUT, preprocess_options(checkpoint.config))
    if role == "scorer" and "conv1.weight" in checkpoint.state:
        from .resnet import infer_resnet50

        try:
            module = infer_resnet50(checkpoint.state)
        except (KeyError, ValueError) as exc:
            raise ModelLoadError(spec.name, file, f"is not a ResNet-50 state dict ({exc})",
                                 "Use a checkpoint saved from torchvision's resnet50 layout, or name the architecture "
                                 "in the catalog entry's input.arch.") from exc
        return BuiltNet(load_into(spec.name, file, module, checkpoint.state), file, RESNET_LAYOUT)
    from .checkpoints import describe_keys

    tried = [TORCHSCRIPT_LAYOUT, ARCH_LAYOUT + " (not set)", AVA_LAYOUT, SIAMESE_LAYOUT] + ([RESNET_LAYOUT] if role == "scorer" else [])
    raise ModelLoadError(spec.name, file, f"fits none of the layouts keepers reads for a {role} (tried: {'; '.join(tried)}); "
                         f"it holds {describe_keys(checkpoint)}",
                         "Name the network in the catalog entry's input (input: {arch: package.module:Class}), "
                         "or export it with torch.jit.script(model).save(path).")


def _build_clip(spec: SpecLike, path: Path) -> BuiltNet:
    """A CLIP image encoder from a Hugging Face snapshot folder: config.json and the
    weights as model.safetensors or pytorch_model.bin (what openai/clip-vit-base-patch32
    holds; a plain state dict, loaded with weights_only=True)."""
    from .clip import ClipImageEncoder, read_config, vision_state

    folder = path if path.is_dir() else path.parent
    if path.is_file():
        file = path
    elif any(folder.rglob("*.safetensors")):
        file = single_file(spec.name, folder, (".safetensors",))
    else:
        file = single_file(spec.name, folder, (".bin",))
    try:
        config = read_config(folder)
        module: nn.Module = ClipImageEncoder(config)
    except (ValueError, TypeError, OSError) as exc:
        raise ModelLoadError(spec.name, folder / "config.json", f"is not a CLIP config keepers understands: {exc}",
                             "Fetch the repository's config.json with the weights, or remove it to use ViT-B/32 defaults.") from exc
    state = vision_state(load_state_dict(spec.name, file))
    return BuiltNet(load_into(spec.name, file, module, state), file, "CLIP vision encoder")


class Preprocess:
    """Decoded image -> normalised float tensor (C, H, W) at the model's input size.

    Options (the catalog entry's ``input``, or a checkpoint's own config): ``size``;
    ``center_crop`` (short side to ``resize``, default ``size``, then the middle);
    ``pad_square`` (long side to ``size``, padded to a square with the mean colour);
    ``mean``/``std``; ``resample`` (bilinear or bicubic). Otherwise the image is
    stretched to ``size``."""

    def __init__(self, options: Any, *, clip: bool = False):
        size = options.get("size", options.get("image_size", 224))
        self.center_crop = bool(options.get("center_crop", clip))
        self.pad_square = bool(options.get("pad_square", False))
        if clip:
            options = {"mean": CLIP_MEAN, "std": CLIP_STD, **options}
        self.size = (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[1]))
        self.resize = int(options["resize"]) if options.get("resize") else None
        self.resample = Image.Resampling.BILINEAR if options.get("resample") == "bilinear" else Image.Resampling.BICUBIC
        mean = tuple(float(v) for v in options.get("mean", IMAGENET_MEAN))
        self.fill = tuple(round(v * 255) for v in mean)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(options.get("std", IMAGENET_STD), dtype=torch.float32).view(3, 1, 1)

    def __call__(self, rgb: np.ndarray) -> torch.Tensor:
        image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
        if self.pad_square:
            image = self._fit_and_pad(image)
        elif self.center_crop and self.resize:
            image = self._resize_and_crop(image)
        elif self.center_crop and image.size != self.size:  # short side to size, then the middle
            scale = max(self.size[0] / image.width, self.size[1] / image.height)
            image = image.resize((max(self.size[0], round(image.width * scale)), max(self.size[1], round(image.height * scale))),
                                 Image.Resampling.BICUBIC)
            left, top = (image.width - self.size[0]) // 2, (image.height - self.size[1]) // 2
            image = image.crop((left, top, left + self.size[0], top + self.size[1]))
        if image.size != self.size:
            image = image.resize(self.size, Image.Resampling.BILINEAR)
        tensor = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (tensor - self.mean) / self.std

    def _resize_and_crop(self, image: Image.Image) -> Image.Image:
        """torchvision's ``Resize(resize)`` (short side; the long side truncated) then ``CenterCrop(size)``."""
        assert self.resize is not None
        short, long = sorted(image.size)
        scaled = (self.resize, int(self.resize * long / short))
        image = image.resize(scaled if image.width <= image.height else scaled[::-1], self.resample)
        width, height = self.size
        left, top = int(round((image.width - width) / 2.0)), int(round((image.height - height) / 2.0))
        return image.crop((left, top, left + width, top + height))

    def _fit_and_pad(self, image: Image.Image) -> Image.Image:
        """The long side to ``size``, centred on a square of the mean colour."""
        scale = min(self.size[0] / image.width, self.size[1] / image.height)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), self.resample)
        canvas = Image.new("RGB", self.size, self.fill)  # type: ignore[arg-type]
        canvas.paste(image, ((self.size[0] - image.width) // 2, (self.size[1] - image.height) // 2))
        return canvas

    def batch(self, images: Sequence["Decoded"]) -> torch.Tensor:
        return torch.stack([self(img.rgb) for img in images])


def _first_tensor(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    if isinstance(out, dict) and out:
        return next(v for v in out.values() if isinstance(v, torch.Tensor))
    raise TypeError(f"model returned {type(out).__name__}, not a tensor")


class TorchScorer(LearnedScorer):
    """One quality/aesthetic value per image.

    The output is one number per image (regression), or a distribution over
    ``k`` ordered buckets (AVA's 10 ratings): then the raw score is the
    expected rating 1..k under its softmax (input.output: distribution, or
    auto by shape)."""

    def __init__(self, spec: SpecLike, path: Path, *, threads: int = 0, version: str | None = None):
        super().__init__(spec, version)
        configure_torch_threads(threads)
        built = build_module(spec, path, "scorer")
        self.module, self.file, self.layout = built.module, built.file, built.layout
        self.preprocess = Preprocess(built.preprocess or options_of(spec))
        self.output = str(self.options.get("output", "auto"))

    def _raw_batch(self, images: Sequence["Decoded"]) -> list[float]:
        with torch.inference_mode():
            out = _first_tensor(self.module(self.preprocess.batch(images))).float()
        out = out.reshape(len(images), -1)
        if out.shape[1] == 1 and self.output != "distribution":
            return [float(v) for v in out[:, 0]]
        if self.output in ("auto", "distribution") and out.shape[1] > 1:
            buckets = torch.arange(1, out.shape[1] + 1, dtype=torch.float32)
            return [float(v) for v in (torch.softmax(out, dim=1) * buckets).sum(dim=1)]
        raise RuntimeError(f"model {self.name!r} returned {out.shape[1]} values per image; expected 1 "
                           "(regression) or a rating distribution (input: {output: distribution})")


class TorchComparator:
    """The pairwise comparator: which of two photos of the same scene is better.

    The network takes two image batches; it returns one logit per pair
    (sigmoid = probability the first is better) or two (log-)probabilities or
    logits per pair, where index ``first_better_index`` means the first image
    is better: 1, as the Siamese training code has it, unless the catalog
    entry's ``input.first_better_index`` says 0. ``compare`` returns
    (winner, confidence): winner 0 = ``a``, 1 = ``b``; confidence 0.5..1."""

    task = "comparator"

    def __init__(self, spec: SpecLike, path: Path, *, threads: int = 0, version: str | None = None,
                 decode_size: int = 1024):
        configure_torch_threads(threads)
        self.spec = spec
        self.name = spec.name
        self.version = version or str(options_of(spec).get("version", "1"))
        built = build_module(spec, path, "comparator")
        self.module, self.file, self.layout = built.module, built.file, built.layout
        self.preprocess = Preprocess(built.preprocess or options_of(spec))
        self.first_better_index = int(getattr(self.module, "first_better_index", options_of(spec).get("first_better_index", 1)))
        if self.first_better_index not in (0, 1):
            raise ModelLoadError(self.name, self.file, f"input.first_better_index is {self.first_better_index}",
                                 "Set it to 1 when index 1 of the output means the first image is better, else 0.")
        self.decode_size = decode_size
        self._lock = threading.Lock()

    def compare(self, a: Path, b: Path) -> tuple[int, float]:
        from ...imaging.decode import decode_image

        return self.compare_decoded(decode_image(a, size=self.decode_size), decode_image(b, size=self.decode_size))

    def compare_decoded(self, a: "Decoded", b: "Decoded") -> tuple[int, float]:
        with self._lock, torch.inference_mode():
            out = _first_tensor(self.module(self.preprocess.batch([a]), self.preprocess.batch([b]))).float().reshape(-1)
        if out.numel() == 1:
            p_first = float(torch.sigmoid(out[0]))
        elif out.numel() == 2:
            p_first = float(torch.softmax(out, dim=0)[self.first_better_index])
        else:
            raise RuntimeError(f"comparator {self.name!r} returned {out.numel()} values for a pair; expected 1 or 2")
        return (0, p_first) if p_first >= 0.5 else (1, 1.0 - p_first)

    def close(self) -> None:
        self.module = None  # type: ignore[assignment]


class TorchEmbedder:
    """Image embeddings for clustering: one L2-normalised float32 vector per image."""

    task = "embedding"

    def __init__(self, spec: SpecLike, path: Path, *, threads: int = 0, version: str | None = None):
        configure_torch_threads(threads)
        self.spec = spec
        self.name = spec.name
        self.version = version or str(options_of(spec).get("version", "1"))
        built = build_module(spec, path, "embedder")
        self.module, self.file, self.layout = built.module, built.file, built.layout
        self.preprocess = Preprocess(built.preprocess or options_of(spec), clip=spec.adapter in CLIP_ADAPTERS)
        self.batch_size = int(options_of(spec).get("batch_size", 8))
        self._lock = threading.Lock()

    def embed_batch(self, images: Sequence["Decoded"]) -> list[np.ndarray]:
        vectors: list[np.ndarray] = []
        for start in range(0, len(images), max(1, self.batch_size)):
            chunk = images[start : start + max(1, self.batch_size)]
            with self._lock, torch.inference_mode():
                out = _first_tensor(self.module(self.preprocess.batch(chunk))).float().reshape(len(chunk), -1)
            out = torch.nn.functional.normalize(out, dim=1)
            vectors.extend(np.ascontiguousarray(v.numpy(), dtype="<f4") for v in out)
        return vectors

    def close(self) -> None:
        self.module = None  # type: ignore[assignment]
