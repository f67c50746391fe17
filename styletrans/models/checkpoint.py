"""Load a trained ``TransformerNet`` from a Lightning checkpoint.

The checkpoint contract (written by ``styletrans train``): a dict with ``state_dict``
(network keys prefixed ``transformer.``; other keys are ignored) and
``hyper_parameters`` (``style_name``, the training settings). The network's shape is
read from the weights themselves, so a checkpoint whose hyper-parameters lack or
misstate ``transformer`` still loads. Loading never unpickles code
(``weights_only=True``).
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from styletrans.atomic import atomic_path
from styletrans.models.transformer import TransformerConfig, TransformerNet

PREFIX = "transformer."
# Hyper-parameters worth carrying into an exported model's metadata.
TRAINING_KEYS = (
    "transformer", "loss_network", "content_layers", "style_layers", "content_weight",
    "style_weight", "tv_weight", "image_size", "style_size", "style_image", "lr", "lr_schedule", "warmup_steps",
    "decay_steps", "shift_weight", "shift_noise", "style_factors", "base", "base_lr",
)


class CheckpointError(ValueError):
    """A file is not a readable styletrans checkpoint (the message says why)."""


def _network_state(state: dict[str, Any], path: Path) -> dict[str, Tensor]:
    """The ``transformer.*`` tensors without their prefix (or a bare TransformerNet state dict)."""
    network = {k[len(PREFIX):]: v for k, v in state.items() if k.startswith(PREFIX)}
    if not network and any(k.startswith("encoder.") for k in state):
        network = dict(state)  # a plain ``TransformerNet.state_dict()``
    if not network:
        sample = ", ".join(list(state)[:5]) or "none"
        raise CheckpointError(f"{path}: no transformer weights (keys starting with {PREFIX!r}; found {sample}, ...)")
    return network


def infer_config(state: dict[str, Tensor], margin: int = 0) -> TransformerConfig:
    """Width and depth of the network that produced ``state``; the margin holds no weights, so it
    comes from the checkpoint's recorded config."""
    try:
        first = state["encoder.0.1.weight"]
        base_channels = int(first.shape[0])
    except (KeyError, AttributeError, IndexError):
        raise CheckpointError("transformer weights lack encoder.0.1.weight (not a TransformerNet)") from None
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"residuals\.(\d+)\.", k))}
    norm = state.get("encoder.0.2.weight")  # (channels,), or (styles, channels) when conditional
    styles = int(norm.shape[0]) if norm is not None and norm.dim() == 2 else 1
    return TransformerConfig(base_channels=base_channels, residual_blocks=len(blocks),
                             space_to_depth=int(first.shape[1]) == 12, styles=styles, margin=margin)


def _jsonable(value: Any) -> Any:
    """Plain JSON types only: metadata ends up in ONNX files and HTTP replies."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def load_transformer(path: str | os.PathLike) -> tuple[TransformerNet, dict[str, Any]]:
    """``(network in eval mode, metadata)`` from a Lightning checkpoint.

    ``metadata``: ``style_name`` (the file's stem when the checkpoint has none),
    ``transformer`` (the config), ``training`` (the settings it was trained with) and
    ``checkpoint`` (the file name).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not zipfile.is_zipfile(path):  # torch.save (and Lightning) write zip archives
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (not a torch.save archive)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: not a plain-weights checkpoint: it holds Python objects other than tensors and "
            "containers, which are not loaded (loading them could run code)"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: expected a checkpoint dict, found {type(payload).__name__}")
    state = payload.get("state_dict", payload)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: 'state_dict' is a {type(state).__name__}, not a dict")
    network_state = _network_state(state, path)
    hparams = payload.get("hyper_parameters")
    config = infer_config(network_state, _recorded_margin(hparams, path))
    net = TransformerNet(config)
    try:
        net.load_state_dict(network_state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: transformer weights do not fit {config}: {exc}") from None
    metadata = model_metadata(hparams if isinstance(hparams, dict) else {}, config, default_name=path.stem)
    metadata["checkpoint"] = path.name
    return net.eval(), metadata


def _recorded_margin(hparams: Any, path: Path) -> int:
    """The margin in the checkpoint's ``transformer`` hyper-parameter (0 when none is recorded)."""
    recorded = hparams.get("transformer") if isinstance(hparams, dict) else None
    margin = recorded.get("margin", 0) if isinstance(recorded, dict) else 0
    if not isinstance(margin, int) or isinstance(margin, bool) or margin < 0:
        raise CheckpointError(f"{path}: recorded transformer margin {margin!r} is not a whole number >= 0")
    return margin


def model_metadata(hparams: dict[str, Any], config: TransformerConfig, default_name: str = "style") -> dict[str, Any]:
    """``style_name``, ``transformer`` (the config) and ``training`` (settings) as plain JSON; a
    multi-style network adds ``styles``, its style names in the network's order, and one trained onto
    a base (``styletrans.training.finetune``) ``fine_tune``: the base's name and styles, and the new ones."""
    training = {k: _jsonable(hparams[k]) for k in TRAINING_KEYS if k in hparams}
    training["transformer"] = config.as_dict()  # the truth, from the weights
    metadata = {
        "style_name": str(hparams.get("style_name") or default_name),
        "transformer": config.as_dict(),
        "training": training,
    }
    if config.styles > 1:
        images = hparams.get("style_image")
        names = [Path(str(image)).stem for image in images] if isinstance(images, list | tuple) else []
        if len(names) != config.styles:  # hyper-parameters lost or wrong: number the styles
            names = [f"style{index}" for index in range(config.styles)]
        metadata["styles"] = names
        fine_tune = hparams.get("fine_tune")
        if isinstance(fine_tune, dict) and set(fine_tune.get("new_styles") or []) <= set(names):
            metadata["fine_tune"] = _jsonable(fine_tune)
    return metadata


def write_checkpoint(path: str | os.PathLike, net: TransformerNet, style_name: str, **hyper_parameters: Any) -> Path:
    """Save ``net`` in the checkpoint contract above (what tests and converters need;
    ``styletrans train`` writes the full Lightning checkpoint)."""
    path = Path(path)
    state = {f"{PREFIX}{k}": v.detach().cpu() for k, v in net.state_dict().items()}
    hparams = {"style_name": style_name, "transformer": net.config.as_dict(), **hyper_parameters}
    with atomic_path(path, overwrite=True) as tmp:
        torch.save({"state_dict": state, "hyper_parameters": hparams}, tmp)
    return path
