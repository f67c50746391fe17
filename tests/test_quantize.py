"""int8 quantization: fp16 widening is exact, the int8 model keeps the contract and metadata,
which convolutions stay float, the int8 check passes good models and fails broken ones, the
CLI (``quantize``, ``export --int8``) and how ``--precision`` picks the int8 variant."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import styletrans
from styletrans.atomic import OutputExistsError
from styletrans.cli import main
from styletrans.export import export_onnx, verify_int8
from styletrans.inference import ModelError, OnnxBackend, list_models
from styletrans.inference.quantize import calibration_images, conv_names, quantize_onnx, resolve_keep_float, widen_fp16
from styletrans.inference.registry import pick_precision
from styletrans.models.checkpoint import write_checkpoint
from styletrans.models.transformer import TransformerConfig, TransformerNet
from styletrans.serving.models import scan
from tests.conftest import make_photo

TINY = TransformerConfig(base_channels=8, residual_blocks=1)
SIZES = ((37, 51), (64, 96))
PHOTOS = Path(styletrans.__file__).parent / "assets" / "photos"  # 4 real photos shipped with the package


@pytest.fixture(scope="module")
def net() -> TransformerNet:
    torch.manual_seed(0)
    return TransformerNet(TINY).eval()


@pytest.fixture(scope="module")
def calibration_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("calibration")
    for i in range(6):
        make_photo(80, 64, seed=100 + i).save(root / f"c{i}.png")
    return root


@pytest.fixture(scope="module")
def calibration(calibration_dir: Path) -> list[np.ndarray]:
    return calibration_images(sorted(calibration_dir.iterdir()), count=6, size=48)


@pytest.fixture(scope="module")
def fp32_model(net: TransformerNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(net, tmp_path_factory.mktemp("fp32") / "tiny.onnx",
                       metadata={"style_name": "tiny_wave", "training": {"style_weight": 5.0}})


@pytest.fixture(scope="module")
def int8_model(fp32_model: Path, calibration: list[np.ndarray]) -> Path:
    return quantize_onnx(fp32_model, fp32_model.with_name("tiny.int8.onnx"), calibration)


def test_calibration_images_are_seeded_crops_in_unit_range(calibration_dir: Path) -> None:
    photos = sorted(calibration_dir.iterdir())
    first = calibration_images(photos, count=4, size=48, seed=3)
    again = calibration_images(photos, count=4, size=48, seed=3)
    assert len(first) == 4 and all(a.shape == (1, 3, 48, 48) and a.dtype == np.float32 for a in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert all(a.min() >= 0.0 and a.max() <= 1.0 for a in first)


def test_widening_fp16_is_exact_and_leaves_no_half_precision(net: TransformerNet, tmp_path: Path) -> None:
    fp16 = export_onnx(net, tmp_path / "tiny.fp16.onnx", fp16=True)
    model = onnx.load(fp16)
    widen_fp16(model)
    assert not [t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert all(a.i != onnx.TensorProto.FLOAT16 for n in model.graph.node for a in n.attribute if a.name == "to")
    onnx.save_model(model, tmp_path / "wide.onnx")
    x = torch.rand(2, 3, 40, 52)
    wide, half = OnnxBackend(tmp_path / "wide.onnx", "cpu")(x), OnnxBackend(fp16, "cpu")(x)
    with torch.no_grad():
        reference = net(x)
    # the fp16 weights computed in fp32: closer to PyTorch than the fp16 model itself
    assert (wide - reference).abs().max() <= (half - reference).abs().max() + 1e-4
    assert (wide - reference).abs().max() < 5e-3


def test_int8_model_keeps_the_contract_and_the_metadata(int8_model: Path, fp32_model: Path, net: TransformerNet,
                                                        calibration: list[np.ndarray]) -> None:
    backend = OnnxBackend(int8_model, provider="cpu")  # passes the (N, 3, H, W) signature check
    meta = backend.metadata
    assert meta["precision"] == "int8"
    assert meta["style_name"] == "tiny_wave" and meta["training"] == {"style_weight": 5.0}
    assert meta["format"] == OnnxBackend(fp32_model, "cpu").metadata["format"]
    info = meta["quantization"]
    assert info["format"] == "QDQ" and info["calibration_images"] == len(calibration)
    assert info["quantized_convs"] == len(conv_names(onnx.load(fp32_model))) - 2
    out = backend(torch.rand(3, 3, 29, 45))  # odd sizes and batch > 1, as every styletrans model
    assert out.shape == (3, 3, 29, 45) and out.dtype == torch.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_first_and_last_convolutions_stay_float_by_default(int8_model: Path) -> None:
    model = onnx.load(int8_model)
    producers = {out: node for node in model.graph.node for out in node.output}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]

    def quantized(conv: onnx.NodeProto) -> bool:  # its weight arrives through a DequantizeLinear
        producer = producers.get(conv.input[1])
        return producer is not None and producer.op_type == "DequantizeLinear"

    assert [quantized(c) for c in convs] == [False] + [True] * (len(convs) - 2) + [False]


def test_keep_float_names_resolve(fp32_model: Path) -> None:
    model = onnx.load(fp32_model)
    convs = conv_names(model)
    assert resolve_keep_float(model, ["first", "last", "1", convs[1]]) == [convs[0], convs[-1], convs[1]]
    with pytest.raises(ValueError, match="not first, last"):
        resolve_keep_float(model, ["middle"])


def test_int8_check_passes_the_quantized_model(int8_model: Path, net: TransformerNet, fp32_model: Path) -> None:
    report = verify_int8(int8_model, net, sizes=SIZES)
    assert report.passed, report.summary()
    assert 0 < report.mean_abs_diff < report.p99_abs_diff <= report.max_abs_diff
    assert "PASS" in report.summary()
    # against its own fp32 ONNX model, the same bound holds
    assert verify_int8(int8_model, OnnxBackend(fp32_model, "cpu"), sizes=SIZES, reference_name="fp32").passed


def test_int8_check_is_a_real_check(int8_model: Path, fp32_model: Path, tmp_path: Path) -> None:
    """Another network's output, and a model calibrated on black images, both fail."""
    torch.manual_seed(1)
    other = TransformerNet(TINY).eval()
    assert not verify_int8(int8_model, other, sizes=SIZES).passed
    black = [np.zeros((1, 3, 48, 48), np.float32)] * 3
    broken = quantize_onnx(fp32_model, tmp_path / "black.int8.onnx", black)
    torch.manual_seed(0)
    report = verify_int8(broken, TransformerNet(TINY).eval(), sizes=SIZES)
    assert not report.passed, report.summary()
    assert "FAIL" in report.summary()


def test_quantize_refuses_to_overwrite_or_requantize(int8_model: Path, fp32_model: Path,
                                                     calibration: list[np.ndarray], tmp_path: Path) -> None:
    with pytest.raises(OutputExistsError):
        quantize_onnx(fp32_model, int8_model, calibration)
    with pytest.raises(ValueError, match="already quantized"):
        quantize_onnx(int8_model, tmp_path / "twice.onnx", calibration)
    with pytest.raises(ValueError, match="calibration"):
        quantize_onnx(fp32_model, tmp_path / "none.onnx", [])


def run_cli(argv: list[str]) -> tuple[int, str]:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(argv)
    return status, printed.getvalue()


def test_quantize_command_writes_the_int8_variant_beside_the_model(net: TransformerNet, calibration_dir: Path,
                                                                   tmp_path: Path) -> None:
    model = export_onnx(net, tmp_path / "wave.onnx", fp16=True, metadata={"style_name": "wave"})
    argv = ["quantize", str(model), "--calibration", str(PHOTOS), "--calibration-size", "64",
            "--verify-sizes", "37x51", "64x96"]
    status, printed = run_cli(argv)
    assert status == 0, printed
    assert (tmp_path / "wave.int8.onnx").is_file()
    assert "PASS: int8 vs the fp16 model" in printed
    meta = OnnxBackend(tmp_path / "wave.int8.onnx", "cpu").metadata
    assert meta["quantization"]["source_precision"] == "fp16"
    assert meta["quantization"]["calibration_dir"] == PHOTOS.name
    assert run_cli(argv)[0] == 2  # exists: not replaced without --overwrite


def test_export_int8_writes_both_models_verified_against_pytorch(net: TransformerNet, calibration_dir: Path,
                                                                 tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "last.ckpt", net, "tiny_wave", loss_network="random",
                            content_layers={"relu2_2": 1.0}, style_weight=5.0, image_size=256, style_size=256)
    out = tmp_path / "out" / "tiny_wave.onnx"
    out.parent.mkdir()
    assert run_cli(["export", str(ckpt), "-o", str(out), "--int8"])[0] == 2  # needs --calibration
    status, printed = run_cli(["export", str(ckpt), "-o", str(out), "--int8", "--calibration", str(PHOTOS),
                               "--calibration-size", "64", "--verify-sizes", "37x51"])
    assert status == 0, printed
    assert "int8 vs PyTorch fp32" in printed and "PASS" in printed
    int8 = OnnxBackend(out.with_name("tiny_wave.int8.onnx"), "cpu")
    assert int8.metadata["precision"] == "int8" and int8.metadata["training"]["style_weight"] == 5.0


def test_precision_picks_the_int8_variant(tmp_path: Path, fp32_model: Path, int8_model: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "wave.onnx").write_bytes(fp32_model.read_bytes())
    (folder / "wave.int8.onnx").write_bytes(int8_model.read_bytes())
    (folder / "solo.int8.onnx").write_bytes(int8_model.read_bytes())  # an int8 model alone
    assert list_models([folder]) == {"wave": folder / "wave.onnx", "solo": folder / "solo.int8.onnx"}
    assert pick_precision(folder / "wave.onnx", "auto") == folder / "wave.int8.onnx"
    assert pick_precision(folder / "wave.onnx", "float") == folder / "wave.onnx"
    assert pick_precision(folder / "wave.onnx", "int8") == folder / "wave.int8.onnx"
    assert pick_precision(folder / "solo.int8.onnx", "auto") == folder / "solo.int8.onnx"
    with pytest.raises(ModelError, match="float"):
        pick_precision(folder / "solo.int8.onnx", "float")
    (folder / "plain.onnx").write_bytes(fp32_model.read_bytes())
    assert pick_precision(folder / "plain.onnx", "auto") == folder / "plain.onnx"
    with pytest.raises(ModelError, match="no int8 variant"):
        pick_precision(folder / "plain.onnx", "int8")
    served = {precision: {name: path.name for name, (path, _) in scan(folder, precision).items()}
              for precision in ("auto", "int8", "float")}
    assert served["auto"] == {"wave": "wave.int8.onnx", "solo": "solo.int8.onnx", "plain": "plain.onnx"}
    assert served["int8"] == {"wave": "wave.int8.onnx", "solo": "solo.int8.onnx"}
    assert served["float"] == {"wave": "wave.onnx", "plain": "plain.onnx"}


def test_stylize_command_runs_the_variant_the_precision_picks(tmp_path: Path, fp32_model: Path, int8_model: Path,
                                                              calibration_dir: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "wave.onnx").write_bytes(fp32_model.read_bytes())
    (folder / "wave.int8.onnx").write_bytes(int8_model.read_bytes())
    photo = sorted(calibration_dir.iterdir())[0]
    picked = {}
    for precision in ("auto", "float"):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            status, _ = run_cli(["stylize", "--model", "wave", "--models-dir", str(folder), str(photo),
                                 "-o", str(tmp_path / precision), "--precision", precision, "--quiet"])
        assert status == 0
        picked[precision] = err.getvalue()
    assert "wave.int8.onnx" in picked["auto"] and "wave.int8.onnx" not in picked["float"]
    assert json.dumps(picked)  # both printed which file ran
