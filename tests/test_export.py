"""ONNX export: parity with PyTorch at odd sizes and batch > 1, fp16 bound, metadata,
clear errors for corrupt or foreign files, the CLI and the training callback."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch

from styletrans.atomic import OutputExistsError
from styletrans.cli import main
from styletrans.export import FP16_TOLERANCE, FP32_TOLERANCE, OnnxExportCallback, export_onnx, verify_onnx
from styletrans.inference import ModelError, OnnxBackend, Stylizer
from styletrans.models.checkpoint import CheckpointError, load_transformer, write_checkpoint
from styletrans.models.transformer import TransformerConfig, TransformerNet

TINY = TransformerConfig(base_channels=8, residual_blocks=1)


@pytest.fixture(scope="module")
def net() -> TransformerNet:
    torch.manual_seed(0)
    return TransformerNet(TINY).eval()


@pytest.fixture(scope="module")
def checkpoint(net: TransformerNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "last.ckpt"
    return write_checkpoint(path, net, "tiny_wave", loss_network="random", content_layers={"relu2_2": 1.0},
                            style_weight=5.0, image_size=256, style_size=256)


@pytest.fixture(scope="module")
def exported(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The fp32 model, written by the CLI (which also verifies it); and what it printed."""
    import contextlib
    import io

    output = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["export", str(checkpoint), "--output", str(output), "--verify-sizes", "37x51", "64x96"])
    assert status == 0
    return output, printed.getvalue()


@pytest.fixture(scope="module")
def exported_fp16(net: TransformerNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(net, tmp_path_factory.mktemp("onnx16") / "tiny.fp16.onnx", fp16=True)


def test_load_transformer_reads_the_checkpoint_contract(net: TransformerNet, checkpoint: Path) -> None:
    loaded, meta = load_transformer(checkpoint)
    assert loaded.config == TINY
    assert meta["style_name"] == "tiny_wave"
    assert meta["training"]["content_layers"] == {"relu2_2": 1.0}
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))


@pytest.mark.parametrize("config", [TINY, TransformerConfig(8, 2, space_to_depth=True)])
def test_load_transformer_infers_the_config_from_the_weights(config: TransformerConfig, tmp_path: Path) -> None:
    state = {f"transformer.{k}": v for k, v in TransformerNet(config).state_dict().items()}
    state["loss.some_buffer"] = torch.zeros(1)  # other keys are ignored
    torch.save({"state_dict": state, "hyper_parameters": {"transformer": "wrong"}}, tmp_path / "x.ckpt")
    loaded, meta = load_transformer(tmp_path / "x.ckpt")
    assert loaded.config == config
    assert meta["style_name"] == "x"  # no style_name: the file's stem


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a readable PyTorch checkpoint"),
        (b"garbage" * 10, "not a readable PyTorch checkpoint"),
        ({"state_dict": {"model.conv.weight": torch.zeros(1)}}, "no transformer weights"),
        ({"state_dict": {"transformer.decoder.x": torch.zeros(1)}}, "not a TransformerNet"),
        (OutputExistsError(Path("x")), "not a plain-weights checkpoint"),  # needs code to unpickle
    ],
)
def test_load_transformer_rejects_other_files(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "bad.ckpt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=message):
        load_transformer(path)


def test_cli_export_prints_verification(exported: tuple[Path, str]) -> None:
    path, printed = exported
    assert path.is_file()
    assert "37x51" in printed and "64x96" in printed and "PASS" in printed


def test_onnx_matches_pytorch_at_odd_sizes_and_batches(exported: tuple[Path, str], net: TransformerNet) -> None:
    backend = OnnxBackend(exported[0], provider="cpu")
    # The model was traced at 64x96; none of these sides is a multiple of 4 except 96.
    for shape in [(1, 3, 5, 7), (3, 3, 37, 51), (2, 3, 255, 257), (4, 3, 30, 96)]:
        x = torch.rand(shape)
        with torch.no_grad():
            expected = net(x)
        got = backend(x)
        assert got.shape == expected.shape
        assert (got - expected).abs().max().item() < FP32_TOLERANCE, shape


def test_verify_onnx_reports_each_size(exported: tuple[Path, str], net: TransformerNet) -> None:
    report = verify_onnx(exported[0], net, sizes=((31, 33), (64, 96)))
    assert report.passed
    assert [row["size"] for row in report.rows] == ["31x33", "64x96"]
    assert all(row["batch"] == 2 for row in report.rows)  # a random image and a real photo
    other = TransformerNet(TINY)  # different weights: must fail the check
    assert not verify_onnx(exported[0], other, sizes=((31, 33),)).passed


def test_fp16_export_within_its_bound(exported_fp16: Path, net: TransformerNet) -> None:
    report = verify_onnx(exported_fp16, net, sizes=((37, 51), (128, 96)))
    assert report.tolerance == FP16_TOLERANCE
    assert report.passed, report.summary()
    assert report.max_abs_diff > 1e-6  # it really computed in half precision
    model = onnx.load(exported_fp16)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 contract kept


def test_metadata_and_dynamic_axes(exported: tuple[Path, str]) -> None:
    model = onnx.load(exported[0])
    props = {p.key: p.value for p in model.metadata_props}
    assert props["style_name"] == "tiny_wave"
    assert props["precision"] == "fp32"
    assert "RGB in [0, 1]" in props["preprocessing"]
    assert json.loads(props["training"])["style_weight"] == 5.0
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]
    stylizer = Stylizer(exported[0])
    assert stylizer.style_name == "tiny_wave"


def test_export_does_not_overwrite(exported: tuple[Path, str], net: TransformerNet) -> None:
    before = exported[0].read_bytes()
    with pytest.raises(OutputExistsError):
        export_onnx(net, exported[0])
    assert exported[0].read_bytes() == before


def _foreign_model(path: Path) -> Path:
    """A valid ONNX model that is not an image network: (1, 10) -> (1, 10)."""
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 10])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 10])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "classifier", [x], [y])
    onnx.save(onnx.helper.make_model(graph, ir_version=10, opset_imports=[onnx.helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [("empty", "empty file"), ("truncated", "not a valid ONNX model"), ("text", "not a valid ONNX model"),
     ("foreign", "not a styletrans style model"), ("missing", "no such model file")],
)
def test_corrupt_or_foreign_onnx_gives_a_clear_error(exported: tuple[Path, str], tmp_path: Path, kind: str,
                                                     message: str) -> None:
    path = tmp_path / "model.onnx"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(exported[0].read_bytes()[:5000])
    elif kind == "text":
        path.write_text("<html>404 not found</html>")
    elif kind == "foreign":
        _foreign_model(path)
    with pytest.raises(ModelError, match=message):
        Stylizer(path)
    status = main(["stylize", "--model", str(path), str(tmp_path), "--output-dir", str(tmp_path / "out")])
    assert status == 2  # a user error, before any image is touched


def test_training_callback_exports_and_verifies(net: TransformerNet, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    callback = OnnxExportCallback(dirpath=tmp_path, sizes=((33, 35),))
    trainer = SimpleNamespace(is_global_zero=True, log_dir=None, default_root_dir=str(tmp_path))
    module = SimpleNamespace(transformer=net, hparams={"style_name": "wave", "style_weight": 5.0,
                                                       "transformer": TINY.as_dict()})
    callback.on_fit_end(trainer, module)
    assert callback.exported == [tmp_path / "wave.onnx"]
    assert "PASS" in capsys.readouterr().out
    x = np.random.default_rng(0).random((1, 3, 33, 35), dtype=np.float32)
    out = OnnxBackend(tmp_path / "wave.onnx", provider="cpu")(torch.from_numpy(x))
    with torch.no_grad():
        assert (out - net(torch.from_numpy(x))).abs().max() < FP32_TOLERANCE


# -- fp16 at the sizes and widths that are really served ------------------------------------------


def _preset_checkpoint(preset: str, folder: Path) -> tuple[Path, TransformerNet]:
    torch.manual_seed(3)
    net = TransformerNet(TransformerConfig.preset(preset)).eval()
    return write_checkpoint(folder / f"{preset}.ckpt", net, f"{preset}_style"), net


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["light", "default", "fast"])
def test_cli_fp16_export_of_the_presets_at_512x768(preset: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Half precision at the full network widths and a real output size (where fp16's range
    and the instance-norm sums over 400k pixels are tested, not the tiny test networks')."""
    checkpoint, _ = _preset_checkpoint(preset, tmp_path)
    output = tmp_path / f"{preset}.fp16.onnx"
    # The command writes the model only if ONNX Runtime matches PyTorch fp32 within 1e-2 here.
    assert main(["export", str(checkpoint), "--output", str(output), "--fp16", "--verify-sizes", "512x768"]) == 0
    printed = capsys.readouterr().out
    assert "fp16" in printed and "512x768" in printed and "PASS" in printed
    weights = onnx.load(output).graph.initializer
    assert weights and all(w.data_type == onnx.TensorProto.FLOAT16 for w in weights if len(w.dims) == 4)


@pytest.mark.slow
def test_training_callback_exports_fp16_of_the_light_preset_at_512x768(tmp_path: Path) -> None:
    _, net = _preset_checkpoint("light", tmp_path)
    callback = OnnxExportCallback(dirpath=tmp_path, fp16=True, sizes=((512, 768),))
    trainer = SimpleNamespace(is_global_zero=True, log_dir=None, default_root_dir=str(tmp_path))
    module = SimpleNamespace(transformer=net, hparams={"style_name": "light_style",
                                                       "transformer": net.config.as_dict()})
    callback.on_fit_end(trainer, module)  # raises if either export misses its bound
    assert callback.exported == [tmp_path / "light_style.onnx", tmp_path / "light_style.fp16.onnx"]
    assert OnnxBackend(tmp_path / "light_style.fp16.onnx", provider="cpu").metadata["precision"] == "fp16"


def test_a_checkpoint_keeps_its_margin_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    net = TransformerNet(TransformerConfig(8, 1, space_to_depth=True, margin=8)).eval()
    loaded, meta = load_transformer(write_checkpoint(tmp_path / "m.ckpt", net, "framed"))
    assert loaded.config.margin == 8 and meta["transformer"]["margin"] == 8
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))
    bad = write_checkpoint(tmp_path / "bad.ckpt", net, "framed", transformer={"margin": "wide"})
    with pytest.raises(CheckpointError, match="recorded transformer margin 'wide'"):
        load_transformer(bad)


def test_a_network_with_a_margin_exports_and_matches_pytorch_at_any_size(tmp_path: Path) -> None:
    torch.manual_seed(3)
    net = TransformerNet(TransformerConfig(8, 1, space_to_depth=True, margin=8)).eval()
    path = export_onnx(net, tmp_path / "framed.onnx", metadata={"style_name": "framed"})
    report = verify_onnx(path, net, sizes=((5, 7), (37, 51), (64, 96)))
    assert report.passed, report.summary()
