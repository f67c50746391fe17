"""The two ways to run a style network: ONNX Runtime (the default) and PyTorch eager.

Both take and return float32 NCHW RGB batches in [0, 1] and are safe to call from
several threads at once (``InferenceSession.run`` is thread-safe; the torch module is
only read under ``inference_mode``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

MODEL_FORMAT = "styletrans-transformer/1"
PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
# ``auto`` tries CUDA, then CPU. TensorRT is opt-in: it builds an engine per new input
# shape (minutes), which is a poor default for photos of mixed sizes.
AUTO_ORDER = ("cuda", "cpu")


class ModelError(ValueError):
    """A model file is missing, corrupt, foreign or cannot run here (the message says why)."""


# How a session holds its working memory (see ``OnnxBackend``; measured in benchmarks/serve_memory.py).
MEMORY_MODES = ("arena", "shrink", "no-arena")


def ort_session_options(threads: int | None = None, memory: str = "arena") -> Any:
    """ONNX Runtime session options for this network."""
    import onnxruntime as ort

    if memory not in MEMORY_MODES:
        raise ValueError(f"unknown memory mode {memory!r}; one of {', '.join(MEMORY_MODES)}")
    options = ort.SessionOptions()
    # Without the arena each tensor is malloc'd and freed; glibc serves the large ones from
    # mmap, so they go back to the OS when freed and a server's RSS falls after a large image.
    options.enable_cpu_mem_arena = memory != "no-arena"
    # ENABLE_ALL adds the blocked-layout (NCHWc) CPU convolutions: ~15% faster here than EXTENDED.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or 0  # 0: one per physical core
    # Worker threads sleep rather than spin between layers: on a shared CPU this measured
    # ~7% less CPU time and a lower median latency for the light network at 512x512.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def _provider_chain(provider: str, available: list[str]) -> list[str]:
    if provider == "auto":
        return [PROVIDERS[p] for p in AUTO_ORDER if PROVIDERS[p] in available]
    if provider not in PROVIDERS:
        raise ModelError(f"unknown provider {provider!r}; one of auto, {', '.join(PROVIDERS)}")
    if PROVIDERS[provider] not in available:
        raise ModelError(f"provider {provider!r} is not in this onnxruntime build (available: {', '.join(available)})")
    chain = {"tensorrt": ["tensorrt", "cuda", "cpu"], "cuda": ["cuda", "cpu"], "cpu": ["cpu"]}[provider]
    return [PROVIDERS[p] for p in chain if PROVIDERS[p] in available]


def _check_signature(session: Any, label: str) -> None:
    """A styletrans model maps one (N, 3, H, W) float image batch to another."""
    inputs, outputs = session.get_inputs(), session.get_outputs()

    def is_image(arg: Any) -> bool:
        return arg.type == "tensor(float)" and len(arg.shape) == 4 and arg.shape[1] in (3, "3")

    if len(inputs) != 1 or len(outputs) != 1 or not is_image(inputs[0]) or not is_image(outputs[0]):
        found = ", ".join(f"{a.name}: {a.type} {a.shape}" for a in inputs)
        if any(a.name == "style_weights" for a in inputs):
            raise ModelError(f"{label}: a mixing model (style weights as an input): stylize with a mix of its "
                             "styles, e.g. -m 'STYLE:0.7,OTHER:0.3', or POST /v1/stylize/mix?styles=...")
        raise ModelError(
            f"{label}: not a styletrans style model: expected one float input of shape (N, 3, H, W), found {found}"
        )


class OnnxBackend:
    """An ONNX Runtime session for a styletrans ``.onnx`` file (or its bytes).

    ``memory``: ``arena`` (ONNX Runtime's default: the CPU arena grows to the largest call and
    keeps it; fastest for one-shot CLI use), ``shrink`` (the arena, shrunk after every call)
    or ``no-arena`` (plain malloc: RSS returns to its base after each call; the server's choice).
    """

    name = "onnx"

    def __init__(self, model: str | os.PathLike | bytes, provider: str = "auto", threads: int | None = None,
                 memory: str = "arena") -> None:
        import onnxruntime as ort

        label = "<bytes>" if isinstance(model, bytes) else str(model)
        if not isinstance(model, bytes):
            path = Path(model)
            if not path.is_file():
                raise ModelError(f"{path}: no such model file")
            if path.stat().st_size == 0:
                raise ModelError(f"{path}: empty file (0 bytes), not an ONNX model")
            model = os.fspath(path)
        chain = _provider_chain(provider, ort.get_available_providers())
        # A GPU provider that cannot start (no GPU, no CUDA libraries) logs an error
        # and falls back to CPU; quiet it and say below which provider really runs.
        ort.set_default_logger_severity(4)
        try:
            self.session = ort.InferenceSession(model, ort_session_options(threads, memory), providers=chain)
        except Exception as exc:  # ORT raises its own unrelated exception classes
            message = str(exc).split(":", 2)[-1].strip() or type(exc).__name__
            raise ModelError(f"{label}: not a valid ONNX model ({message})") from None
        finally:
            ort.set_default_logger_severity(2)
        _check_signature(self.session, label)
        self.provider = self.session.get_providers()[0]
        if provider not in ("auto", "cpu") and self.provider != PROVIDERS[provider]:
            raise ModelError(
                f"provider {provider!r} could not start (no usable GPU or missing CUDA/cuDNN libraries); "
                "use --provider auto or cpu"
            )
        self.input_name = self.session.get_inputs()[0].name
        self.metadata = read_metadata(self.session)
        self.memory = memory
        self.run_options = None
        if memory == "shrink":
            self.run_options = ort.RunOptions()
            self.run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def __call__(self, batch: Tensor) -> Tensor:
        array = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input_name: array}, self.run_options)[0])

    def describe(self) -> str:
        return f"ONNX Runtime {self.provider}"


def read_metadata(session: Any) -> dict[str, Any]:
    """The styletrans metadata of a session's model; JSON values decoded."""
    raw = dict(session.get_modelmeta().custom_metadata_map)
    meta: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            meta[key] = json.loads(value)
        except ValueError:
            meta[key] = value
    return meta


class TorchBackend:
    """PyTorch eager execution of a ``TransformerNet`` (CUDA when present)."""

    name = "torch"

    def __init__(self, net: nn.Module, device: str | torch.device | None = None) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.net = net.eval().requires_grad_(False).to(self.device)
        self.provider = f"torch {self.device.type}"
        self.metadata: dict[str, Any] = {}

    def __call__(self, batch: Tensor) -> Tensor:
        with torch.inference_mode():
            return self.net(batch.to(self.device)).float().cpu()

    def describe(self) -> str:
        return f"PyTorch eager on {self.device}"
