"""An NVIDIA Triton Inference Server model repository from exported styletrans models.

    repo/
      starry_night/
        config.pbtxt        onnxruntime backend, dynamic batching, optional TensorRT fp16
        1/model.onnx

Triton batches requests whose tensors have the same shape, so with input dims
``[3, -1, -1]`` it batches per image size, as ``styletrans serve`` does. Pre- and
post-processing (decoding, resizing, colour preservation, strength, encoding) stay on
the client: the model's input is float32 NCHW RGB in [0, 1], its output the same.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from styletrans.atomic import OutputExistsError, atomic_path
from styletrans.inference import ModelError, resolve_model
from styletrans.serving.models import valid_style_name

VERSION = "1"
TRT_CACHE = "/tmp/triton-trt-cache"  # inside the Triton container; mount a volume to keep engines


def model_io(path: Path) -> tuple[str, str]:
    """The input and output tensor names of a styletrans model; ``ModelError`` for anything else."""
    import onnx

    try:
        model = onnx.load(os.fspath(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise ModelError(f"{path}: not a valid ONNX model ({exc})") from None
    weights = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]

    def is_image(value: Any) -> bool:
        tensor = value.type.tensor_type
        dims = tensor.shape.dim
        return tensor.elem_type == onnx.TensorProto.FLOAT and len(dims) == 4 and dims[1].dim_value == 3

    if len(inputs) != 1 or len(model.graph.output) != 1 or not is_image(inputs[0]) \
            or not is_image(model.graph.output[0]):
        raise ModelError(f"{path}: not a styletrans style model (expected one float (N, 3, H, W) input and output)")
    return inputs[0].name, model.graph.output[0].name


def config_pbtxt(name: str, input_name: str, output_name: str, *, max_batch_size: int, fp16_tensorrt: bool,
                 batch_delay_ms: float = 10.0, max_queue: int = 64, queue_timeout_s: float = 30.0,
                 max_side: int = 2048) -> str:
    """The text of ``config.pbtxt`` (protobuf text format of Triton's ``ModelConfig``)."""
    tensor = 'name: "{}"\n    data_type: TYPE_FP32\n    dims: [ 3, -1, -1 ]'
    text = f"""# Written by `styletrans triton-repo`: float32 NCHW RGB in [0, 1] in and out.
name: "{name}"
backend: "onnxruntime"
max_batch_size: {max_batch_size}
input [
  {{
    {tensor.format(input_name)}
  }}
]
output [
  {{
    {tensor.format(output_name)}
  }}
]
dynamic_batching {{
  max_queue_delay_microseconds: {round(batch_delay_ms * 1000)}
  default_queue_policy {{
    timeout_action: REJECT
    default_timeout_microseconds: {round(queue_timeout_s * 1e6)}
    max_queue_size: {max_queue}
  }}
}}
parameters {{ key: "style_name" value: {{ string_value: "{name}" }} }}
"""
    if fp16_tensorrt:
        # One optimization profile covering every size the HTTP server accepts; without it
        # TensorRT builds a new engine for each new input shape (minutes each).
        shapes = {"min": "1x3x64x64", "opt": f"{max_batch_size}x3x512x512",
                  "max": f"{max_batch_size}x3x{max_side}x{max_side}"}
        profile = "".join(
            f'\n      parameters {{ key: "trt_profile_{kind}_shapes" value: "{input_name}:{shape}" }}'
            for kind, shape in shapes.items())
        text += f"""optimization {{
  execution_accelerators {{
    gpu_execution_accelerator: [ {{
      name: "tensorrt"
      parameters {{ key: "precision_mode" value: "FP16" }}
      parameters {{ key: "max_workspace_size_bytes" value: "{4 << 30}" }}
      parameters {{ key: "trt_engine_cache_enable" value: "1" }}
      parameters {{ key: "trt_engine_cache_path" value: "{TRT_CACHE}/{name}" }}{profile}
    }} ]
  }}
}}
"""
    return text


def write_triton_repo(models: Sequence[str | os.PathLike], out_dir: str | os.PathLike, max_batch_size: int = 8,
                      fp16_tensorrt: bool = False, *, overwrite: bool = False, **config: Any) -> list[Path]:
    """Write ``<out_dir>/<style>/config.pbtxt`` and ``<style>/1/model.onnx`` for each model.

    ``models``: ``.onnx`` files or model names (looked up like ``styletrans stylize
    --model``); the style name is the file name without ``.onnx``. Every model is
    checked before anything is written; existing entries are replaced only with
    ``overwrite``. ``config``: extra keywords of ``config_pbtxt``. Returns the
    model folders written.
    """
    if max_batch_size < 1:
        raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
    out = Path(out_dir)
    plan: list[tuple[str, Path, str]] = []
    for spec in models:
        path = resolve_model(spec)
        if path.suffix.lower() != ".onnx":
            raise ModelError(f"{path}: Triton needs an exported .onnx model (run `styletrans export` first)")
        name = path.name[: -len(".onnx")]
        if not valid_style_name(name):
            raise ValueError(f"{path.name}: model names are letters, digits, '_', '-' and '.'")
        if any(name == other for other, _, _ in plan):
            raise ValueError(f"two models named {name!r}")
        text = config_pbtxt(name, *model_io(path), max_batch_size=max_batch_size, fp16_tensorrt=fp16_tensorrt,
                            **config)
        if not overwrite and (out / name).exists():
            raise OutputExistsError(out / name)
        plan.append((name, path, text))
    written = []
    for name, path, text in plan:
        folder = out / name
        (folder / VERSION).mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / VERSION / "model.onnx", overwrite=True) as tmp:
            shutil.copyfile(path, tmp)
        with atomic_path(folder / "config.pbtxt", overwrite=True) as tmp:
            tmp.write_text(text)
        written.append(folder)
    return written


def parse_config(text: str) -> Any:
    """Parse ``config.pbtxt`` text into Triton's ``ModelConfig`` message (needs ``tritonclient``)."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except (ImportError, RuntimeError) as exc:
        raise ModuleNotFoundError(
            "validating a Triton config needs tritonclient: pip install --no-deps tritonclient==2.73.0 "
            "grpcio python-rapidjson"
        ) from exc
    return text_format.Parse(text, model_config_pb2.ModelConfig())
