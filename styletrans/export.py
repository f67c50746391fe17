"""Export a trained ``TransformerNet`` to ONNX, and check the export against PyTorch.

The exported model takes ``image``: float32 (N, 3, H, W) RGB in [0, 1] with N, H and W
dynamic (any H, W >= 5, also not multiples of 4), and returns ``stylized`` in the same
layout and range. An fp16 export computes in half precision but keeps float32 input
and output, so every styletrans model has the same contract. The style name, the
training settings and this contract are in the model's ``metadata_props``.

A multi-style network (conditional instance norm) is exported one style at a time, that style's
scales and shifts baked into plain instance norms (``per_style_networks``): each file is exactly what a
single-style network exports, so every tool downstream and its speed are unchanged. Its metadata names
the base network it came from (``base``), which is what decides whether styles can be mixed.

Mixing (``export_mix_onnx``): the whole multi-style network as one ``BASE.mix.onnx`` with a second input,
``style_weights`` (one float per style, in the order of its ``styles`` metadata), which blends the
scales and shifts inside the graph; ``styletrans.inference.mixing`` binds a mix's weights into it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from styletrans.atomic import OutputExistsError, atomic_path
from styletrans.inference.backends import MODEL_FORMAT, OnnxBackend
from styletrans.inference.mixing import MIX_FORMAT, WEIGHTS_INPUT
from styletrans.models.checkpoint import model_metadata
from styletrans.models.conditional import ConditionalInstanceNorm2d, bake_style
from styletrans.models.transformer import TransformerNet

# Largest |ONNX Runtime - PyTorch fp32| accepted on [0, 1] outputs.
FP32_TOLERANCE = 1e-3
# fp16 keeps ~3 significant digits through up to 17 conv layers; measured max errors
# are ~1.8e-3 (light and default presets, random weights, noise and photos, up to 512x768).
FP16_TOLERANCE = 1e-2
# int8 (``styletrans.inference.quantize``): activations are rounded to 1/255 of their calibrated range
# at every convolution, so single pixels can move by 0.1 or more where fp16 moves 2e-3.
# The check is on real photos only (random noise lies outside the calibrated ranges, and
# nobody stylizes it) and bounds the mean and the 99th percentile of |int8 - fp32|.
# Measured on the four bundled styles at 64x96 to 512x768: mean 0.005-0.011, p99 0.017-0.074
# (composition_vii the highest; its SSIM to fp32 is still 0.99: models/README.md). Another
# network, or a model calibrated on black images, fails it (tests/test_quantize.py).
INT8_MEAN_TOLERANCE = 0.015
INT8_P99_TOLERANCE = 0.08
VERIFY_SIZES = ((64, 96), (255, 257), (512, 768))
PREPROCESSING = (
    "input 'image': float32 NCHW, RGB in [0, 1], any batch size, height and width >= 5 (no mean/std "
    "normalization); output 'stylized': float32 NCHW RGB in [0, 1], same size"
)
MIN_SIDE = 5
MIX_INPUTS = (f"input {WEIGHTS_INPUT!r}: float32 (styles,), one weight per style in the order of the 'styles' "
              "metadata; the scales and shifts are blended with these weights as given (a convex mix sums to 1)")


def per_style_networks(net: TransformerNet, metadata: dict[str, Any],
                       names: list[str] | None = None) -> list[tuple[TransformerNet, dict[str, Any]]]:
    """``(single-style network, its metadata)`` for each style of a multi-style ``net`` (or those named).

    The metadata is the base's, with ``style_name`` the style's own, ``training.style_image`` that
    style's image alone, and ``base``: the base network's name and its list of styles.
    """
    styles = list(metadata["styles"])
    unknown = [name for name in names or [] if name not in styles]
    if unknown:
        raise ValueError(f"style(s) {unknown} are not in {metadata['style_name']!r}; it holds {styles}")
    training = dict(metadata.get("training", {}))
    images = training.get("style_image")
    out = []
    for index, name in enumerate(styles):
        if names and name not in names:
            continue
        baked = bake_style(net, index).eval()
        style_training = {**training, "transformer": baked.config.as_dict()}
        if isinstance(images, list) and len(images) == len(styles):
            style_training["style_image"] = images[index]
        out.append((baked, {"style_name": name, "transformer": baked.config.as_dict(), "training": style_training,
                            "base": {"name": metadata["style_name"], "styles": styles, "index": index}}))
    return out


def mixing_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The mixing model's metadata: the base's, named after the base, with its ``styles`` and ``base``."""
    styles = list(metadata["styles"])
    return {**metadata, "style_name": metadata["style_name"], "styles": styles,
            "base": {"name": metadata["style_name"], "styles": styles}, "inputs": MIX_INPUTS}


class PhaseConv(nn.Module):
    """A stride-1 KxK convolution with few output channels, computed as four output
    phases: one stride-2 (K+1)x(K+1) convolution with 4x the outputs, then pixel shuffle.

    Same result (to rounding), but ONNX Runtime's blocked CPU convolution pads output
    channels to its SIMD width (16 on AVX-512): the final 9x9 layer, 3 outputs, wasted
    13/16 of its work and took 30% of the light network's time. As phases (12 outputs
    at a quarter of the pixels) the whole light network runs ~25% faster on CPU.
    Needs even input height and width.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        out_ch, in_ch, k, _ = conv.weight.shape
        weight = conv.weight.new_zeros(out_ch, 2, 2, in_ch, k + 1, k + 1)
        for a in range(2):
            for b in range(2):
                weight[:, a, b, :, a:a + k, b:b + k] = conv.weight.detach()  # phase (a, b): kernel shifted
        self.weight = nn.Parameter(weight.reshape(4 * out_ch, in_ch, k + 1, k + 1))
        # pixel_shuffle reads channel o * 4 + 2a + b as output pixel (2i + a, 2j + b) of channel o
        self.bias = nn.Parameter(conv.bias.detach().repeat_interleave(4))

    def forward(self, x: Tensor) -> Tensor:
        return F.pixel_shuffle(F.conv2d(x, self.weight, self.bias, stride=2), 2)


class ExportableTransformer(nn.Module):
    """``TransformerNet`` prepared for export: the same function in the chosen precision,
    with a full-size last convolution as a ``PhaseConv`` (its input is always even-sized)."""

    def __init__(self, net: TransformerNet, fp16: bool = False) -> None:
        super().__init__()
        net = copy.deepcopy(net).float().eval()  # the exported graph references these parameters
        if not net.config.space_to_depth:  # whose last convolution runs at half size already
            head = net.decoder[-1]
            head[-1] = PhaseConv(head[-1])
        self.net = net.to(torch.float16 if fp16 else torch.float32)
        self.dtype = torch.float16 if fp16 else torch.float32

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image.to(self.dtype)).float()


class ExportableMixer(ExportableTransformer):
    """A multi-style ``TransformerNet`` for export with its style weights as a second input.

    The scales and shifts stay float32 in an fp16 model too: the blend is computed in fp32 and rounded
    to fp16 once, and once the weights are bound (``inference.mixing.bind_weights``) ONNX Runtime folds it
    (it folds no fp16 MatMul), which leaves exactly the graph of a baked single-style model.
    """

    def __init__(self, net: TransformerNet, fp16: bool = False) -> None:
        super().__init__(net, fp16=fp16)
        for module in self.net.modules():
            if isinstance(module, ConditionalInstanceNorm2d):
                module.float()

    def forward(self, image: Tensor, style_weights: Tensor) -> Tensor:  # the ONNX input names
        return self.net(image.to(self.dtype), style_weights.float()).float()


def _metadata_props(metadata: dict[str, Any], fp16: bool) -> dict[str, str]:
    props = {
        "format": MODEL_FORMAT,
        "style_name": str(metadata.get("style_name", "unnamed")),
        "precision": "fp16" if fp16 else "fp32",
        "preprocessing": PREPROCESSING,
        "min_side": str(MIN_SIDE),
    }
    for key, value in metadata.items():
        props.setdefault(key, value if isinstance(value, str) else json.dumps(value, sort_keys=True))
    return props


def export_onnx(net: TransformerNet, output: str | os.PathLike, *, metadata: dict[str, Any] | None = None,
                fp16: bool = False, opset: int | None = None, overwrite: bool = False) -> Path:
    """Write ``net`` as an ONNX model with dynamic batch, height and width; return the path.

    The file appears atomically (never half-written) and only replaces an existing one
    if ``overwrite``. ``onnx.checker`` validates the model before it is written.
    """
    import onnx

    output = Path(output)
    if output.exists() and not overwrite:  # fail before the slow export, not after
        raise OutputExistsError(output)
    module = ExportableTransformer(net, fp16=fp16).eval()
    model = _export_program(module, {"image": torch.rand(1, 3, 64, 96)}, opset)
    model.doc_string = f"styletrans fast style transfer network: {PREPROCESSING}"
    onnx.helper.set_model_props(model, _metadata_props(metadata or {}, fp16))
    return _check_and_save(model, output, overwrite)


def _export_program(module: nn.Module, examples: dict[str, Tensor], opset: int | None) -> Any:
    """The ONNX ``ModelProto`` of ``module`` called with ``examples`` (``image`` first, whose batch,
    height and width are dynamic; other inputs keep their shapes); output ``stylized``."""
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height", min=MIN_SIDE),
            3: torch.export.Dim("width", min=MIN_SIDE)}
    shapes = {name: dims if name == "image" else None for name in examples}
    # The exporter narrates each step on stdout; keep the command's output readable.
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        program = torch.onnx.export(
            module, tuple(examples.values()), input_names=list(examples), output_names=["stylized"],
            dynamic_shapes=shapes, opset_version=opset, dynamo=True, optimize=True,
        )
    return program.model_proto


def _check_and_save(model: Any, output: Path, overwrite: bool) -> Path:
    import onnx

    onnx.checker.check_model(model, full_check=True)
    with atomic_path(output, overwrite=overwrite) as tmp:
        onnx.save_model(model, os.fspath(tmp))
    return output


def export_mix_onnx(net: TransformerNet, output: str | os.PathLike, *, metadata: dict[str, Any] | None = None,
                    fp16: bool = False, opset: int | None = None, overwrite: bool = False) -> Path:
    """Write a multi-style ``net`` as a mixing model (inputs ``image`` and ``style_weights``); see
    ``export_onnx`` for the rest of the contract. ``metadata``: ``mixing_metadata``'s."""
    import onnx

    if not isinstance(net, TransformerNet) or net.config.styles < 2:
        raise ValueError("a mixing model needs a multi-style network (config.styles > 1)")
    output = Path(output)
    if output.exists() and not overwrite:
        raise OutputExistsError(output)
    styles = net.config.styles
    module = ExportableMixer(net, fp16=fp16).eval()
    examples = {"image": torch.rand(1, 3, 64, 96), WEIGHTS_INPUT: torch.full((styles,), 1 / styles)}
    model = _export_program(module, examples, opset)
    model.doc_string = f"styletrans multi-style mixing network: {PREPROCESSING}; {MIX_INPUTS}"
    props = _metadata_props(metadata or {}, fp16)
    props["format"] = MIX_FORMAT
    onnx.helper.set_model_props(model, props)
    return _check_and_save(model, output, overwrite)


@dataclass
class Verification:
    """ONNX Runtime vs PyTorch fp32 on the same inputs: max |difference| per size."""

    model: str
    tolerance: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    # int8: ``tolerance`` bounds the 99th percentile of |diff| and this the mean (see INT8_*).
    mean_tolerance: float | None = None
    reference: str = "PyTorch"

    @property
    def max_abs_diff(self) -> float:
        return max(row["max_abs_diff"] for row in self.rows)

    @property
    def mean_abs_diff(self) -> float:
        return max(row["mean_abs_diff"] for row in self.rows)

    @property
    def p99_abs_diff(self) -> float:
        return max(row["p99_abs_diff"] for row in self.rows)

    @property
    def passed(self) -> bool:
        if self.mean_tolerance is None:
            return self.max_abs_diff <= self.tolerance
        return self.p99_abs_diff <= self.tolerance and self.mean_abs_diff <= self.mean_tolerance

    def summary(self) -> str:
        lines = [f"{'size (HxW)':>12} {'batch':>5} {'max |diff|':>11} {'p99 |diff|':>11} {'mean |diff|':>11}"]
        lines += [f"{row['size']:>12} {row['batch']:>5} {row['max_abs_diff']:>11.2e} {row['p99_abs_diff']:>11.2e} "
                  f"{row['mean_abs_diff']:>11.2e}" for row in self.rows]
        verdict = "PASS" if self.passed else "FAIL"
        if self.mean_tolerance is None:
            lines.append(f"{verdict}: max |ONNX - {self.reference}| = {self.max_abs_diff:.2e} "
                         f"(bound {self.tolerance:.0e})")
        else:
            lines.append(f"{verdict}: int8 vs {self.reference} on photos: p99 |diff| {self.p99_abs_diff:.2e} "
                         f"(bound {self.tolerance:g}), mean |diff| {self.mean_abs_diff:.2e} "
                         f"(bound {self.mean_tolerance:g}); max {self.max_abs_diff:.2e} (not bounded)")
        return "\n".join(lines)


def _verification_batch(h: int, w: int, seed: int, photos_only: bool = False) -> Tensor:
    """A random image and a real (bundled) photo, both at h x w (``photos_only``: two photos)."""
    from styletrans.assets import bundled
    from styletrans.images import load_image, resize_tensor

    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 3, h, w, generator=generator)
    photos = bundled("photos")
    if not photos:
        return noise
    names = sorted(photos)
    picked = [names[seed % len(names)]] + ([names[(seed + 1) % len(names)]] if photos_only else [])
    images = [resize_tensor(load_image(photos[name]), (h, w))[None] for name in picked]
    return torch.cat(images if photos_only else [noise, *images])


def _diff_row(h: int, w: int, out: Tensor, expected: Tensor) -> dict[str, Any]:
    diff = (out - expected).abs().flatten()
    # quantile() refuses tensors over 2^24 elements: subsample evenly, enough for a 99th percentile
    sample = diff[:: max(1, diff.numel() // 2**22)]
    return {"size": f"{h}x{w}", "batch": out.shape[0], "max_abs_diff": diff.max().item(),
            "mean_abs_diff": diff.mean().item(), "p99_abs_diff": sample.quantile(0.99).item()}


def verify_onnx(model: str | os.PathLike | OnnxBackend, net: TransformerNet, *,
                sizes: tuple[tuple[int, int], ...] = VERIFY_SIZES, tolerance: float | None = None) -> Verification:
    """Run the exported model and ``net`` (fp32) on a random image and a real photo at each size."""
    backend = model if isinstance(model, OnnxBackend) else OnnxBackend(model, provider="cpu")
    if tolerance is None:
        tolerance = FP16_TOLERANCE if backend.metadata.get("precision") == "fp16" else FP32_TOLERANCE
    report = Verification(model=str(model if not isinstance(model, OnnxBackend) else "<session>"), tolerance=tolerance)
    net = net.eval().float()
    for seed, (h, w) in enumerate(sizes):
        batch = _verification_batch(h, w, seed)
        with torch.inference_mode():
            expected = net(batch)
        report.rows.append(_diff_row(h, w, backend(batch), expected))
    return report


def verify_int8(model: str | os.PathLike | OnnxBackend, reference: nn.Module | Callable[[Tensor], Tensor], *,
                sizes: tuple[tuple[int, int], ...] = VERIFY_SIZES, reference_name: str = "PyTorch fp32",
                p99_tolerance: float = INT8_P99_TOLERANCE,
                mean_tolerance: float = INT8_MEAN_TOLERANCE) -> Verification:
    """An int8 model against its float reference (a ``TransformerNet`` or the fp32/fp16 ONNX
    model it was quantized from) on two bundled photos at each size."""
    backend = model if isinstance(model, OnnxBackend) else OnnxBackend(model, provider="cpu")
    report = Verification(model=str(model if not isinstance(model, OnnxBackend) else "<session>"),
                          tolerance=p99_tolerance, mean_tolerance=mean_tolerance, reference=reference_name)
    if isinstance(reference, nn.Module):
        reference = reference.eval().float()
    for seed, (h, w) in enumerate(sizes):
        batch = _verification_batch(h, w, seed, photos_only=True)
        with torch.inference_mode():
            expected = reference(batch)
        report.rows.append(_diff_row(h, w, backend(batch), expected))
    return report


def _verification_mixes(styles: int, seed: int) -> list[Tensor]:
    """A one-hot choice and a random convex mix of all the styles, different per size."""
    generator = torch.Generator().manual_seed(1000 + seed)
    mix = torch.rand(styles, generator=generator)
    return [torch.nn.functional.one_hot(torch.tensor(seed % styles), styles).float(), mix / mix.sum()]


def verify_mix_onnx(model: str | os.PathLike, net: TransformerNet, *,
                    sizes: tuple[tuple[int, int], ...] = VERIFY_SIZES, tolerance: float | None = None) -> Verification:
    """A mixing model against the multi-style ``net`` (fp32) on a random image and a real photo at each
    size, each under a one-hot and a random mix of the styles (one row per size and mix)."""
    import numpy as np
    import onnxruntime as ort

    from styletrans.inference.backends import ort_session_options, read_metadata

    session = ort.InferenceSession(os.fspath(model), ort_session_options(), providers=["CPUExecutionProvider"])
    if tolerance is None:
        tolerance = FP16_TOLERANCE if read_metadata(session).get("precision") == "fp16" else FP32_TOLERANCE
    report = Verification(model=str(model), tolerance=tolerance)
    net = net.eval().float()
    for seed, (h, w) in enumerate(sizes):
        batch = _verification_batch(h, w, seed)
        for weights in _verification_mixes(net.config.styles, seed):
            with torch.inference_mode():
                expected = net(batch, weights)
            out = session.run(None, {"image": np.ascontiguousarray(batch.numpy(), dtype=np.float32),
                                     WEIGHTS_INPUT: weights.numpy().astype(np.float32)})[0]
            report.rows.append(_diff_row(h, w, torch.from_numpy(out), expected))
    return report


class OnnxExportCallback(pl.Callback):
    """At the end of training, export the module's ``transformer`` to ONNX and verify it.

    Writes ``<dirpath or trainer.log_dir>/<style_name>.onnx`` (fp32, plus ``.fp16.onnx``
    with ``fp16=True``), prints the verification table, and fails loudly if the export
    does not match PyTorch within its bound.
    """

    def __init__(self, dirpath: str | os.PathLike | None = None, fp16: bool = False,
                 sizes: tuple[tuple[int, int], ...] = VERIFY_SIZES) -> None:
        self.dirpath = dirpath
        self.fp16 = fp16
        self.sizes = tuple(tuple(s) for s in sizes)
        self.exported: list[Path] = []

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        net = pl_module.transformer
        metadata = model_metadata(dict(getattr(pl_module, "hparams", {}) or {}), net.config)
        root = Path(self.dirpath or trainer.log_dir or trainer.default_root_dir)
        net_cpu = TransformerNet(net.config)  # a CPU fp32 copy: the trained module stays as it is
        net_cpu.load_state_dict({k: v.detach().float().cpu() for k, v in net.state_dict().items()})
        networks = per_style_networks(net_cpu, metadata) if net.config.styles > 1 else [(net_cpu, metadata)]
        for style_net, style_metadata in networks:
            style = style_metadata["style_name"]
            for fp16 in (False, True) if self.fp16 else (False,):
                path = export_onnx(style_net, root / f"{style}{'.fp16' if fp16 else ''}.onnx",
                                   metadata=style_metadata, fp16=fp16, overwrite=True)
                report = verify_onnx(path, style_net, sizes=self.sizes)
                print(f"exported {path}\n{report.summary()}")
                if not report.passed:
                    raise RuntimeError(f"{path}: ONNX export does not match PyTorch:\n{report.summary()}")
                self.exported.append(path)
