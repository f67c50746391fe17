"""The Triton model repository: layout, configs that parse into Triton's own ``ModelConfig``
message (from ``tritonclient``), TensorRT fp16 settings, and all-or-nothing writing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx import TensorProto, helper

from styletrans.atomic import OutputExistsError
from styletrans.cli import main
from styletrans.inference import ModelError
from styletrans.serving.triton import parse_config, write_triton_repo


@pytest.fixture(scope="module", autouse=True)
def _needs_tritonclient() -> None:
    try:
        from tritonclient.grpc import model_config_pb2  # noqa: F401
    except (ImportError, RuntimeError):  # tritonclient raises RuntimeError when grpcio is missing
        pytest.skip("needs tritonclient: pip install --no-deps tritonclient==2.73.0 grpcio python-rapidjson")


def image_model(path: Path, channels: int = 3) -> Path:
    """A minimal model with the styletrans contract: float (N, C, H, W) 'image' -> 'stylized' (identity)."""
    shape = ["N", channels, "H", "W"]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["stylized"])], "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("stylized", TensorProto.FLOAT, shape)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture
def models(tmp_path: Path) -> list[Path]:
    return [image_model(tmp_path / "starry_night.onnx"), image_model(tmp_path / "wave.onnx")]


def config_of(folder: Path) -> Any:
    return parse_config((folder / "config.pbtxt").read_text())


def test_repository_layout_and_config(models: list[Path], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    folders = write_triton_repo(models, repo, max_batch_size=16, fp16_tensorrt=False)
    assert [f.name for f in folders] == ["starry_night", "wave"]
    for model, folder in zip(models, folders, strict=True):
        assert (folder / "1" / "model.onnx").read_bytes() == model.read_bytes()
        config = config_of(folder)
        assert config.name == folder.name and config.backend == "onnxruntime"
        assert config.max_batch_size == 16
        (inp,), (out,) = config.input, config.output
        assert (inp.name, out.name) == ("image", "stylized")
        assert list(inp.dims) == list(out.dims) == [3, -1, -1]
        assert inp.data_type == out.data_type == 11  # TYPE_FP32
        assert config.dynamic_batching.max_queue_delay_microseconds == 10_000
        assert config.dynamic_batching.default_queue_policy.max_queue_size == 64
        assert config.parameters["style_name"].string_value == folder.name
        assert not config.optimization.HasField("execution_accelerators")


def test_tensorrt_fp16_accelerator(models: list[Path], tmp_path: Path) -> None:
    (folder,) = write_triton_repo(models[:1], tmp_path / "repo", max_batch_size=4, fp16_tensorrt=True)
    (accelerator,) = config_of(folder).optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert accelerator.parameters["precision_mode"] == "FP16"
    assert accelerator.parameters["trt_profile_max_shapes"] == "image:4x3x2048x2048"


def test_parse_config_rejects_what_triton_would(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="max_batch_size"):
        parse_config('name: "x"\nmax_batch_size: eight\n')
    with pytest.raises(Exception, match="no_such_field"):
        parse_config('name: "x"\nno_such_field: 1\n')


def test_nothing_is_written_unless_every_model_is_valid(models: list[Path], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    grey = image_model(tmp_path / "grey.onnx", channels=1)
    with pytest.raises(ModelError, match="not a styletrans style model"):
        write_triton_repo([*models, grey], repo)
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        write_triton_repo([*models, tmp_path / "junk.onnx"], repo)
    assert not repo.exists()


def test_existing_entries_are_kept_unless_overwrite(models: list[Path], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_triton_repo(models, repo, max_batch_size=8)
    with pytest.raises(OutputExistsError):
        write_triton_repo(models, repo, max_batch_size=2)
    assert config_of(repo / "wave").max_batch_size == 8
    write_triton_repo(models, repo, max_batch_size=2, overwrite=True)
    assert config_of(repo / "wave").max_batch_size == 2


def test_triton_repo_command(models: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    repo = tmp_path / "repo"
    assert main(["triton-repo", str(repo), *map(str, models), "--max-batch-size", "4", "--fp16-tensorrt"]) == 0
    out = capsys.readouterr().out
    assert "checked against Triton's ModelConfig schema" in out and "tritonserver --model-repository" in out
    assert config_of(repo / "starry_night").max_batch_size == 4
    assert main(["triton-repo", str(repo), str(models[0])]) == 2  # exists
    assert "already exists" in capsys.readouterr().err
