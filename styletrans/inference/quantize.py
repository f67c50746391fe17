"""Static int8 quantization of an exported style network (ONNX Runtime, QDQ format).

    quantize_onnx("models/starry_night.onnx", "starry_night.int8.onnx", calibration_images(photos))

The source may be an fp32 or fp16 styletrans model: fp16 weights are first widened to
fp32 (the quantizer only reads fp32), which is exact. Convolutions get int8 weights
(per output channel) and uint8 activations calibrated on real photos (min/max of each
activation over the calibration set); everything else — instance norms, ReLU, padding,
upsampling, the sigmoid — stays in float: instance normalization needs the float
statistics of the whole feature map, and ONNX Runtime has no int8 kernel for it.
``keep_float`` names convolutions to leave in float too (see ``DEFAULT_KEEP_FLOAT``).

The result has the same contract and metadata as the source (``precision`` becomes
``int8``; what was quantized and how is recorded under ``quantization``).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from styletrans.atomic import OutputExistsError, atomic_path

# Calibration crops: this many photos, at this side (training crops are 256 px).
CALIBRATION_IMAGES = 64
CALIBRATION_SIZE = 256
# Which convolutions stay in float, by position among the graph's Conv nodes ("first", "last").
# Measured on bundled styles (models/README.md): quantizing the first 9x9 convolution
# (3 input channels) costs the most SSIM for the least time; keeping the last (4-phase
# 10x10, 12 outputs) float too raised SSIM slightly and was 6-7 % faster at 512 px.
DEFAULT_KEEP_FLOAT: tuple[str, ...] = ("first", "last")
CALIBRATION_METHODS = ("minmax", "average", "percentile")
PERCENTILE = 99.999

FLOAT, FLOAT16 = 1, 10  # onnx.TensorProto data types


def widen_fp16(model: Any) -> Any:
    """An fp16 styletrans ``ModelProto`` as fp32, in place: initializers, constants and casts.

    fp16 -> fp32 is exact, so the widened model computes the fp16 model's function with
    fp32 rounding (what the fp32 export computes, to ~1e-3). A model without fp16 is
    returned unchanged.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_type == FLOAT16:
            wide = numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name)
            graph.initializer[index].CopyFrom(wide)
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == FLOAT16:
                attr.i = FLOAT  # the input cast becomes float -> float (removed by the optimizer)
            elif attr.type == attr.TENSOR and attr.t.data_type == FLOAT16:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float32), attr.t.name))
    for info in list(graph.value_info) + list(graph.input) + list(graph.output):
        if info.type.tensor_type.elem_type == FLOAT16:
            info.type.tensor_type.elem_type = FLOAT
    del graph.value_info[:]  # re-inferred below: stale fp16 shapes would confuse the quantizer
    helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, "precision": "fp32"})
    return model


def calibration_images(paths: Sequence[str | os.PathLike], *, count: int = CALIBRATION_IMAGES,
                       size: int = CALIBRATION_SIZE, seed: int = 0) -> list[np.ndarray]:
    """``count`` photos (a seeded random choice among ``paths``), each a random ``size`` x
    ``size`` crop after scaling its short side to ``size``: float32 (1, 3, size, size) in [0, 1].

    Crops at the training size see the activation ranges the network was trained on.
    """
    from styletrans.images import ImageError, load_image

    rng = random.Random(seed)
    chosen = rng.sample(list(paths), min(count, len(paths)))
    arrays = []
    for path in chosen:
        try:
            image = load_image(path)
        except ImageError:
            continue
        _, h, w = image.shape
        scale = size / min(h, w)
        if scale != 1:
            from styletrans.images import resize_tensor

            h, w = max(size, round(h * scale)), max(size, round(w * scale))
            image = resize_tensor(image, (h, w))
        top, left = rng.randint(0, h - size), rng.randint(0, w - size)
        arrays.append(image[None, :, top:top + size, left:left + size].numpy().astype(np.float32))
    if not arrays:
        raise ValueError("no readable calibration image")
    return arrays


class _Reader:
    """ONNX Runtime's ``CalibrationDataReader`` protocol over a list of batches."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]) -> None:
        self._batches: Iterator[np.ndarray] = iter(batches)
        self.input_name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self.input_name: batch}


def conv_names(model: Any) -> list[str]:
    """The names of the graph's Conv nodes, in graph (= network) order."""
    return [node.name for node in model.graph.node if node.op_type == "Conv"]


def resolve_keep_float(model: Any, keep_float: Iterable[str]) -> list[str]:
    """Conv node names for ``keep_float`` entries: ``first``, ``last``, an index or a node name."""
    convs = conv_names(model)
    names = []
    for item in keep_float:
        if item in ("first", "last"):
            names.append(convs[0 if item == "first" else -1])
        elif item.lstrip("-").isdigit():
            names.append(convs[int(item)])
        elif item in convs:
            names.append(item)
        else:
            raise ValueError(f"keep_float: {item!r} is not first, last, an index or one of the Conv nodes {convs}")
    return list(dict.fromkeys(names))


def quantize_onnx(source: str | os.PathLike, output: str | os.PathLike, calibration: Sequence[np.ndarray], *,
                  keep_float: Iterable[str] = DEFAULT_KEEP_FLOAT, reduce_range: bool = True,
                  method: str = "average", overwrite: bool = False,
                  extra_metadata: dict[str, Any] | None = None) -> Path:
    """Write a static-QDQ int8 version of the styletrans model ``source`` to ``output``.

    ``calibration``: float32 (N, 3, H, W) batches in [0, 1] (see ``calibration_images``).
    ``keep_float``: convolutions left in float (``first``, ``last``, indexes or node names).
    ``method``: each activation's range is ``average`` (the mean over calibration images of
    its per-image min and max; measured: SSIM to fp32 0.994 on starry_night, against 0.986
    for the global ``minmax`` and 0.991 for the 99.999th ``percentile``), ``minmax`` or
    ``percentile``. ``reduce_range``: 7-bit weights (see the call below).
    The file appears atomically and replaces an existing one only with ``overwrite``.
    """
    import onnx
    from onnx import helper
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    output = Path(output)
    if output.exists() and not overwrite:
        raise OutputExistsError(output)
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"unknown calibration method {method!r}; one of {', '.join(CALIBRATION_METHODS)}")
    if not calibration:
        raise ValueError("quantization needs at least one calibration image")
    model = onnx.load(os.fspath(source))
    source_props = {p.key: p.value for p in model.metadata_props}
    if source_props.get("precision") == "int8":
        raise ValueError(f"{source}: already quantized")
    widen_fp16(model)
    excluded = resolve_keep_float(model, keep_float)
    input_name = model.graph.input[0].name
    with tempfile.TemporaryDirectory(prefix="styletrans-quant-") as tmp:
        wide, prepared, quantized = (Path(tmp) / name for name in ("wide.onnx", "pre.onnx", "int8.onnx"))
        onnx.save_model(model, os.fspath(wide))
        # ONNX shape inference and ORT's basic optimizations (constant folding) so that the quantizer
        # sees every tensor's type. Symbolic shape inference is skipped: it renamed the output's
        # dynamic sides to opaque expressions of its own.
        quant_pre_process(os.fspath(wide), os.fspath(prepared), skip_symbolic_shape=True)
        quantize_static(
            os.fspath(prepared), os.fspath(quantized), _Reader(input_name, calibration),
            quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"], per_channel=True,
            # AVX2 without VNNI multiplies u8 x s8 pairs into saturating int16: 7-bit weights avoid
            # the overflow (ORT's advice for non-VNNI x86); VNNI machines lose little by it.
            reduce_range=reduce_range, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.Percentile if method == "percentile" else CalibrationMethod.MinMax,
            nodes_to_exclude=excluded,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True, "CalibPercentile": PERCENTILE,
                           "CalibMovingAverage": method == "average"},
        )
        result = onnx.load(os.fspath(quantized))
    for ours, theirs in zip(result.graph.output, model.graph.output, strict=True):
        ours.type.CopyFrom(theirs.type)  # keep the (N, 3, H, W) contract as the source states it
    quantized_convs = [n for n in conv_names(model) if n not in excluded]
    info = {"format": "QDQ", "activations": "uint8 (asymmetric, min/max calibration)",
            "weights": "int8 per output channel, 7-bit range", "quantized_convs": len(quantized_convs),
            "float_convs": excluded, "calibration_images": len(calibration),
            "calibration_size": [int(s) for s in calibration[0].shape[-2:]],
            "source_precision": source_props.get("precision", "fp32"), **(extra_metadata or {})}
    props = {**source_props, "precision": "int8", "quantization": json.dumps(info, sort_keys=True)}
    result.doc_string = model.doc_string
    helper.set_model_props(result, props)
    onnx.checker.check_model(result)
    with atomic_path(output, overwrite=overwrite) as tmp_out:
        onnx.save_model(result, os.fspath(tmp_out))
    return output
