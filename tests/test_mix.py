"""Style mixes: a mixing model (``export --mix``) blends the scales and shifts inside the graph and matches
PyTorch's ``bake_style`` of the same weights; a one-hot mix is that style's own export; every bad mix is one
line naming its cause; ``stylize``, ``batch`` and ``serve`` run mixes. Tiny random networks and 32-48 px
images keep it fast. (New styles on a base: tests/test_new_style.py.)
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image

import styletrans.inference.registry as registry
from styletrans.cli import main
from styletrans.export import FP16_TOLERANCE, export_mix_onnx, mixing_metadata, verify_mix_onnx
from styletrans.images import open_rgb, pil_to_tensor
from styletrans.inference import OnnxBackend, Stylizer, list_models
from styletrans.inference.batch import model_bytes_and_style
from styletrans.inference.mixing import MixError, bind_weights, is_mix_spec, parse_mix, resolve_mix
from styletrans.models.checkpoint import write_checkpoint
from styletrans.models.conditional import ConditionalInstanceNorm2d, bake_style
from styletrans.models.transformer import TransformerConfig, TransformerNet
from tests.conftest import make_photo
from tests.test_multistyle import multistyle_net

TRIO = ["ink", "rust", "moss"]
DUO = ["sun", "sea"]
# ONNX Runtime fp32 against PyTorch fp32 for these tiny networks: measured ~1e-6; bound at export's 1e-3.
MIX_TOLERANCE = 1e-3
# A one-hot mix against that style's baked export: the same arithmetic but for a 1 x S matrix product.
ONE_HOT_TOLERANCE = 1e-5


def export(*args: str) -> None:
    assert main(["export", *args, "--verify-sizes", "32x40"]) == 0


@pytest.fixture(scope="module")
def trio() -> TransformerNet:
    return multistyle_net(3, seed=3)


@pytest.fixture(scope="module")
def models(trio: TransformerNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder: the trio base's mixing model and its ``rust`` style; the duo base's two styles and
    no mixing model; ``solo``, a single-style network."""
    root = tmp_path_factory.mktemp("mix")
    folder = root / "models"
    trio_ckpt = write_checkpoint(root / "trio.ckpt", trio, "trio", style_image=[f"{n}.png" for n in TRIO])
    export(str(trio_ckpt), "-o", str(folder), "--style", "rust")
    export(str(trio_ckpt), "-o", str(folder), "--mix")
    duo = write_checkpoint(root / "duo.ckpt", multistyle_net(2, seed=5), "duo", style_image=[f"{n}.png" for n in DUO])
    export(str(duo), "-o", str(folder))
    torch.manual_seed(0)
    solo = write_checkpoint(root / "solo.ckpt", TransformerNet(TransformerConfig(8, 1)), "solo")
    export(str(solo), "-o", str(folder / "solo.onnx"))
    return folder


@pytest.fixture
def isolated(models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Only ``models`` (as --models-dir) is looked in: no ./models, no bundled styles."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: tmp_path / "no-bundled")
    return models


def photo_batch() -> torch.Tensor:
    return torch.stack([pil_to_tensor(make_photo(44, 36, seed=s)) for s in (1, 2)])


# ---------------------------------------------------------------------------- the spec


def test_a_mix_spec_is_normalized_and_labelled() -> None:
    mix = parse_mix(" starry_night:0.7, great_wave:0.3 ")
    assert mix.weights == (("starry_night", pytest.approx(0.7)), ("great_wave", pytest.approx(0.3)))
    assert mix.label == "starry_night70-great_wave30" and mix.spec == "starry_night:0.7,great_wave:0.3"
    assert parse_mix("a:3,b:1").vector(["b", "c", "a"]) == [0.25, 0.0, 0.75]
    assert parse_mix("a,b").label == "a50-b50"  # a bare name weighs 1
    assert parse_mix("a:1,b:0").label == "a100"  # a style of weight 0 is left out of the name
    assert is_mix_spec("a:0.7,b:0.3") and is_mix_spec("a,b")
    assert not is_mix_spec("starry_night") and not is_mix_spec("models/a:b.onnx")


@pytest.mark.parametrize(("spec", "cause"), [
    ("", "empty style mix"),
    ("a:0.5,,b:0.5", "an empty entry"),
    ("a:0.5,", "an empty entry"),
    (":0.5,b:0.5", "has no style name"),
    ("a:lots,b:1", "the weight of 'a' is 'lots', not a number"),
    ("a:nan,b:1", "not a finite number"),
    ("a:-0.2,b:1", "the weight of 'a' is negative (-0.2)"),
    ("a:0,b:0", "every weight is 0"),
    ("a:1,a:2", "'a' is named twice"),
    ("../x:1,b:1", "not a style name"),
])
def test_a_malformed_mix_is_one_line_naming_the_cause(spec: str, cause: str) -> None:
    with pytest.raises(MixError, match=r"^[^\n]*$") as info:
        parse_mix(spec)
    assert cause in str(info.value)


# ---------------------------------------------------------------------------- the mixing model


def test_the_mixing_model_matches_pytorch_bake_style(models: Path, trio: TransformerNet) -> None:
    path = models / "trio.mix.onnx"
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert meta["format"] == "styletrans-mix/1" and json.loads(meta["styles"]) == TRIO
    assert json.loads(meta["base"]) == {"name": "trio", "styles": TRIO}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image", "style_weights"]
    x = photo_batch()
    for weights in ([0.7, 0.0, 0.3], [0.2, 0.5, 0.3], [0.0, 0.0, 1.0]):
        w = torch.tensor(weights)
        with torch.no_grad():
            expected = bake_style(trio, w).eval()(x)
        raw = session.run(None, {"image": x.numpy(), "style_weights": w.numpy()})[0]
        assert np.abs(raw - expected.numpy()).max() < MIX_TOLERANCE
        bound = OnnxBackend(bind_weights(path, weights, {"style_name": "m"}), provider="cpu")
        assert bound.metadata["format"] == "styletrans-transformer/1"  # an ordinary style model
        assert (bound(x) - expected).abs().max() < MIX_TOLERANCE


def optimized_ops(model: bytes, tmp_path: Path) -> list[str]:
    """The operators of the graph ONNX Runtime runs (after its constant folding)."""
    from styletrans.inference.backends import ort_session_options

    options = ort_session_options(1)
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return [node.op_type for node in onnx.load(tmp_path / "optimized.onnx").graph.node]


def test_an_fp16_mixing_model_is_verified_within_the_fp16_bound(trio: TransformerNet, tmp_path: Path) -> None:
    meta = {"style_name": "trio", "styles": TRIO, "transformer": trio.config.as_dict(), "training": {}}
    path = export_mix_onnx(trio, tmp_path / "trio.mix.onnx", metadata=mixing_metadata(meta), fp16=True)
    report = verify_mix_onnx(path, trio, sizes=((32, 40),))
    assert report.passed and report.tolerance == FP16_TOLERANCE and len(report.rows) == 2  # one-hot and a mix
    # Bound, the blend folds away (fp32 scales and shifts: ONNX Runtime folds no fp16 MatMul): a mix runs
    # the graph of a baked single-style model.
    ops = optimized_ops(bind_weights(path, [0.2, 0.3, 0.5], {}), tmp_path)
    norms = sum(isinstance(m, ConditionalInstanceNorm2d) for m in trio.modules())
    assert "MatMul" not in ops and ops.count("InstanceNormalization") == norms


def test_a_bound_mix_runs_the_graph_of_a_single_style(models: Path, tmp_path: Path) -> None:
    bound = optimized_ops(bind_weights(models / "trio.mix.onnx", [0.5, 0.5, 0.0], {}), tmp_path)
    assert sorted(bound) == sorted(optimized_ops((models / "rust.onnx").read_bytes(), tmp_path))


def test_a_one_hot_mix_is_that_styles_own_export(isolated: Path) -> None:
    x = photo_batch()
    own = OnnxBackend(isolated / "rust.onnx", provider="cpu")(x)
    mixed = Stylizer(resolve_mix("rust:1", isolated).model_bytes(), provider="cpu").run(x)
    assert (mixed - own).abs().max() < ONE_HOT_TOLERANCE


def test_mixing_models_are_not_styles_of_their_own(isolated: Path) -> None:
    assert sorted(list_models([isolated])) == ["rust", "sea", "solo", "sun"]
    assert main(["stylize", "-m", str(isolated / "trio.mix.onnx"), "x.png", "-o", "out"]) == 2


# ---------------------------------------------------------------------------- what cannot be mixed


@pytest.mark.parametrize(("spec", "cause"), [
    ("ink:0.5,nope:0.5", "unknown style 'nope' in the mix"),
    ("ink:0.5,sun:0.5", "styles of different bases cannot be mixed: ink (base trio), sun (base duo)"),
    ("solo:0.5,ink:0.5", "style 'solo' ("),
    ("sun:0.5,sea:0.5", "no mixing model for base 'duo' (duo.mix.onnx)"),
])
def test_what_cannot_be_mixed_is_one_line_naming_the_cause(isolated: Path, spec: str, cause: str) -> None:
    with pytest.raises(MixError, match=r"^[^\n]*$") as info:
        resolve_mix(spec, isolated)
    assert cause in str(info.value)
    assert info.value.unknown == ("unknown" in cause)
    if spec.startswith("solo"):
        assert "is a single-style network" in str(info.value)


# ---------------------------------------------------------------------------- stylize, batch, export


def test_stylize_writes_a_mix_named_after_its_weights(isolated: Path, tmp_path: Path, trio: TransformerNet,
                                                     capsys: pytest.CaptureFixture) -> None:
    make_photo(44, 36, seed=4).save(tmp_path / "photo.png")
    args = ["stylize", "-m", "ink:0.7,moss:0.3", "--models-dir", str(isolated), "photo.png", "-o", "out", "--quiet"]
    assert main(args) == 0
    out = tmp_path / "out" / "photo_ink70-moss30.png"
    with torch.no_grad():
        expected = bake_style(trio, torch.tensor([0.7, 0.0, 0.3])).eval()(pil_to_tensor(open_rgb(out.parent.parent /
                                                                                               "photo.png"))[None])
    got = pil_to_tensor(Image.open(out))
    assert (got - expected[0]).abs().max() <= 1 / 255 + MIX_TOLERANCE  # uint8 rounding
    assert "mix ink:0.7,moss:0.3 of" in capsys.readouterr().err
    assert main(args) == 1 and "already exists" in capsys.readouterr().err  # no overwrite: the file is kept
    for extra, cause in ((["--backend", "torch"], "leave out --backend torch"),
                         (["--precision", "int8"], "no int8 mixing models")):
        assert main([*args, *extra]) == 2
        err = capsys.readouterr().err
        assert cause in err and err.count("\n") == 1
    assert main(["stylize", "-m", "ink:-1,moss:2", "--models-dir", str(isolated), "photo.png", "-o", "out"]) == 2
    assert "negative" in capsys.readouterr().err


def test_batch_ships_a_mix_as_an_ordinary_model(isolated: Path) -> None:
    data, style = model_bytes_and_style("ink:0.25,rust:0.75", str(isolated))
    assert style == "ink25-rust75"
    backend = OnnxBackend(data, provider="cpu")
    assert backend.metadata["mix"] == {"ink": 0.25, "rust": 0.75} and backend.metadata["base"]["name"] == "trio"
    with pytest.raises(MixError, match="different bases"):
        model_bytes_and_style("ink:1,sun:1", str(isolated))


def test_export_mix_refuses_what_it_cannot_do(models: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = models.parent / "trio.ckpt"
    assert main(["export", str(ckpt), "-o", str(models), "--mix"]) == 2  # exists, no --overwrite
    assert "already exists" in capsys.readouterr().err
    for extra, cause in ((["--int8"], "--mix and --int8"), (["--style", "ink"], "--mix and --style"),
                         (["-o", str(tmp_path / "x.onnx")], "ends in .mix.onnx")):
        assert main(["export", str(ckpt), "--mix", *(extra if "-o" in extra else ["-o", str(tmp_path), *extra])]) == 2
        assert cause in capsys.readouterr().err
    assert main(["export", str(models.parent / "solo.ckpt"), "-o", str(tmp_path), "--mix"]) == 2
    assert "holds one style" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing half-written


# ---------------------------------------------------------------------------- serve


@pytest.fixture(scope="module")
def mix_server(models: Path) -> Iterator[object]:
    from tests.test_serving import serve

    with serve(models, batch_timeout_ms=5) as (client, _):
        yield client


def post_mix(client: object, styles: str, data: bytes) -> object:
    return client.post("/v1/stylize/mix", params={"styles": styles}, content=data,
                       headers={"Content-Type": "image/png"})


def png(seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    make_photo(40, 32, seed).save(buffer, "PNG")
    return buffer.getvalue()


def test_serve_mixes_styles(mix_server: object, models: Path, trio: TransformerNet) -> None:
    data = png()
    response = post_mix(mix_server, "ink:0.6,rust:0.4", data)
    assert response.status_code == 200, response.text
    assert response.headers["x-style"] == "ink60-rust40" and response.headers["x-style-base"] == "trio"
    got = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), dtype=np.int16)
    with torch.no_grad():
        expected = bake_style(trio, torch.tensor([0.6, 0.4, 0.0])).eval()(pil_to_tensor(open_rgb(data))[None])[0]
    assert np.abs(got - (expected.permute(1, 2, 0).numpy() * 255)).max() <= 1.5
    mixes = mix_server.get("/v1/styles").json()["mixes"]
    assert mixes == [{"base": "trio", "styles": TRIO, "file": "trio.mix.onnx", "precision": "fp32"}]


@pytest.mark.parametrize(("styles", "status", "cause"), [
    ("ink:0.5,nope:0.5", 404, "unknown style 'nope'"),
    ("ink:-1,rust:1", 400, "negative"),
    ("ink:0,rust:0", 400, "every weight is 0"),
    ("ink:0.5,,rust", 400, "an empty entry"),
    ("ink:1,sun:1", 400, "different bases"),
    ("solo:1,ink:1", 400, "single-style network"),
])
def test_serve_answers_a_bad_mix_with_its_cause(mix_server: object, models: Path, styles: str, status: int,
                                                cause: str) -> None:
    response = post_mix(mix_server, styles, png())
    assert response.status_code == status and cause in response.json()["message"]
    assert str(models) not in response.json()["message"]  # file names, never the server's folders
    assert mix_server.get("/health/ready").status_code == 200
    assert mix_server.post("/v1/stylize/mix", content=png()).status_code == 422  # no styles at all
