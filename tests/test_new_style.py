"""A new style fine-tuned onto a multi-style base (``configs/recipes/new-style.yaml``): its loss falls while
the base's styles stay bit for bit (frozen convolutions), it exports as today's single-style file and mixes
with the base's styles, and every bad input is a one-line error before anything is written. A tiny random
base, 32 px photos and the random loss network keep it to seconds."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import onnx
import pytest
import torch
from PIL import Image

import styletrans.inference.registry as registry
from styletrans.cli import main as styletrans_main
from styletrans.images import pil_to_tensor
from styletrans.inference.mixing import resolve_mix
from styletrans.models.checkpoint import load_transformer, write_checkpoint
from styletrans.models.conditional import ConditionalInstanceNorm2d
from styletrans.models.transformer import TransformerConfig, TransformerNet
from styletrans.training import finetune
from styletrans.training.cli import main as train_main
from styletrans.training.data import ContentImages
from styletrans.training.module import StyleTransferModule
from tests.conftest import make_photo
from tests.test_multistyle import multistyle_net
from tests.test_training import TINY_MODEL, read_metrics, train_args

RECIPE = Path(__file__).parents[1] / "configs" / "recipes" / "new-style.yaml"
BASE_LOSS = {"loss_network": "random", "content_layers": {"relu2_2": 1.0}, "style_layers": {"relu1_2": 1.0,
             "relu2_2": 1.0}, "content_weight": 1.0, "style_weight": 1e4, "tv_weight": 100.0, "shift_weight": 0.0,
             "shift_noise": 0.01}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-style base of the tests' tiny architecture, with the loss it was 'trained' under."""
    root = tmp_path_factory.mktemp("base")
    images = [root / "waves.png", root / "dots.png"]
    for seed, image in enumerate(images):
        make_photo(40, 40, seed=20 + seed).save(image)
    net = multistyle_net(2, space_to_depth=False, seed=11)
    return write_checkpoint(root / "pair.ckpt", net, "pair", style_image=[str(i) for i in images],
                            style_factors={"dots": 0.5}, **BASE_LOSS)


@pytest.fixture(scope="module")
def painting(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("painting") / "candy.png"
    make_photo(48, 48, seed=42).save(path)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    for i in range(6):
        make_photo(40 + 8 * i, 48, seed=i).save(root / f"p{i}.png")
    return root


@pytest.fixture(scope="module")
def run(base: Path, painting: Path, photos: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    run_dir = tmp_path_factory.mktemp("runs") / "candy"
    args = ["--config", str(RECIPE), *train_args(photos, painting, run_dir, 30), "--model.base", str(base),
            "--model.lr", "0.05", "--trainer.enable_progress_bar", "true"]
    return run_dir, train_main(args)


def test_a_new_style_learns_while_the_base_styles_stay_as_they_were(run: tuple[Path, object], base: Path) -> None:
    run_dir, cli = run
    module = cli.model
    assert module.style_names == ["waves", "dots", "candy"] and module.trained == [2]
    assert module.hparams.style_name == "pair-candy" and module.hparams.style_weight == 1e4  # the base's loss
    assert module.style_ids(3, 5).tolist() == [2, 2, 2]
    metrics = read_metrics(run_dir)
    style = [metrics[s]["train/style"] for s in sorted(metrics) if "train/style" in metrics[s]]
    assert sum(style[-5:]) < 0.8 * sum(style[:5]), style
    start, _ = load_transformer(base)
    trained = module.transformer.cpu().state_dict()
    for name, value in start.state_dict().items():
        if value.dim() == 2:  # a conditional norm's (styles, channels) scales or shifts
            assert torch.equal(trained[name][:2], value), name
            assert not torch.equal(trained[name][2], value.mean(0)), name  # the new style moved
        else:
            assert torch.equal(trained[name], value), name  # frozen convolutions
    # Lightning's bar counts down to max_steps (tqdm shows the time remaining from it).
    assert cli.trainer.progress_bar_callback.train_progress_bar.total == 30
    with Image.open(run_dir / "samples" / "step_000030.png") as grid:
        assert grid.height == 2 * 40 + 3 * 2  # the photos, then the new style alone (samples.size 40)
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert ckpt["base"]["name"] == "pair" and len(ckpt["base"]["sha256"]) == 64
    assert [r["name"] for r in ckpt["styles"]] == ["candy"]
    assert ckpt["hyper_parameters"]["fine_tune"] == {"base": "pair", "base_styles": ["waves", "dots"],
                                                     "new_styles": ["candy"], "base_style_factors": {"dots": 0.5}}
    assert ckpt["hyper_parameters"]["style_factors"]["candy"] > 0  # the recipe balances the new style


def test_the_new_style_exports_alone_and_mixes_with_the_base(run: tuple[Path, object], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    ckpt = run[0] / "checkpoints" / "last.ckpt"
    out = tmp_path / "models"
    sizes = ["--verify-sizes", "32x40"]
    assert styletrans_main(["export", str(ckpt), "-o", str(out / "mine.onnx"), *sizes]) == 0
    assert "exporting candy" in capsys.readouterr().out
    props = {p.key: p.value for p in onnx.load(out / "mine.onnx").metadata_props}
    assert props["style_name"] == "candy"
    assert json.loads(props["base"]) == {"name": "pair-candy", "styles": ["waves", "dots", "candy"], "index": 2}
    assert styletrans_main(["export", str(ckpt), "-o", str(out / "mine.onnx"), *sizes]) == 2  # no --overwrite
    assert "already exists" in capsys.readouterr().err
    # A stale int8 model of the name would be run instead of the new export by `-m candy`.
    (out / "candy.int8.onnx").write_bytes(b"an old int8 model")
    assert styletrans_main(["export", str(ckpt), "-o", str(out), *sizes]) == 2
    assert "already has an int8 model" in capsys.readouterr().err and not (out / "candy.onnx").exists()
    assert styletrans_main(["export", str(ckpt), "-o", str(out), "--overwrite", *sizes]) == 0
    assert (out / "candy.onnx").is_file() and not (out / "candy.int8.onnx").exists()
    assert styletrans_main(["export", str(ckpt), "-o", str(out), "--mix", *sizes]) == 0
    plan = resolve_mix("candy:0.5,waves:0.5", out)
    assert plan.mixer.path == out / "pair-candy.mix.onnx" and plan.weights == [0.5, 0.0, 0.5]


def test_the_new_style_starts_at_the_mean_of_the_base_styles() -> None:
    net = multistyle_net(3, seed=2)
    extended = finetune.extend(net, 2)
    assert extended.config.styles == 5
    for name, module in extended.named_modules():
        if isinstance(module, ConditionalInstanceNorm2d):
            source = net.get_submodule(name)
            assert torch.equal(module.weight[:3], source.weight)
            assert torch.allclose(module.weight[3], source.weight.mean(0)) and torch.equal(module.bias[4],
                                                                                          module.bias[3])
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.equal(extended(x, 1), net(x, 1))


def test_a_balanced_factor_brings_the_photos_style_term_to_the_base_median() -> None:
    from styletrans.vgg import VGGFeatures

    encoder = VGGFeatures(["relu1_2", "relu2_2"], weights="random").eval()
    layers = {"relu1_2": 1.0, "relu2_2": 1.0}
    photos = [pil_to_tensor(make_photo(32, 32, seed=i))[None] for i in range(3)]
    calm, loud = torch.full((1, 3, 32, 32), 0.5) + 0.05 * torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32).round()
    assert finetune.balanced_factors(encoder, layers, [calm], [1.0], [calm], photos) == pytest.approx([1.0])
    assert finetune.balanced_factors(encoder, layers, [calm], [0.5], [calm], photos) == pytest.approx([0.5])
    # A high-contrast painting is further from every photo than a flat one: its term is scaled down.
    assert finetune.balanced_factors(encoder, layers, [calm], [1.0], [loud], photos)[0] < 0.5


def test_balance_to_base_records_the_new_styles_factor_and_keeps_a_given_one(base: Path, painting: Path) -> None:
    module = new_style(painting, base, balance_to_base=True)
    module.prepare("cpu")
    factor = module.hparams.style_factors["candy"]
    assert factor > 0 and factor != 1.0 and module.hparams.fine_tune["base_style_factors"] == {"dots": 0.5}
    assert float(module.perceptual.style_factors[0]) == pytest.approx(factor)
    given = new_style(painting, base, balance_to_base=True, style_factors={"candy": 0.3})
    given.prepare("cpu")
    assert given.hparams.style_factors == {"candy": 0.3}


def test_balance_to_base_without_the_base_paintings_is_a_one_line_error(painting: Path, tmp_path: Path) -> None:
    lost = write_checkpoint(tmp_path / "lost.ckpt", multistyle_net(2, space_to_depth=False), "lost",
                            style_image=[str(tmp_path / "gone.png"), str(tmp_path / "away.png")], **BASE_LOSS)
    module = new_style(painting, lost, balance_to_base=True)
    with pytest.raises(ValueError, match=r"^balance_to_base: the base's style image [^\n]*balance_to_base false$"):
        module.prepare("cpu")


def new_style(painting: Path, base: Path | str, **settings: object) -> StyleTransferModule:
    return StyleTransferModule(style_image=str(painting), base=str(base), **{**TINY_MODEL, **settings})


def test_explicit_loss_settings_win_over_the_base(base: Path, painting: Path) -> None:
    inherited = new_style(painting, base).hparams
    assert inherited.tv_weight == 100.0 and inherited.shift_noise == 0.01  # the base's, through its checkpoint
    assert new_style(painting, base, shift_noise=0.0).hparams.shift_noise == 0.0
    assert new_style(painting, base, tv_weight=5.0).hparams.tv_weight == 5.0
    assert StyleTransferModule().hparams.content_weight == 1.0  # no base: the defaults, as before


def test_shift_factor_multiplies_the_bases_stability_weight(painting: Path, tmp_path: Path) -> None:
    steady = write_checkpoint(tmp_path / "steady.ckpt", multistyle_net(2, space_to_depth=False), "steady",
                              style_image=["waves.png", "dots.png"], **{**BASE_LOSS, "shift_weight": 2.0})
    assert new_style(painting, steady).hparams.shift_weight == 2.0
    held = new_style(painting, steady, shift_factor=4.0).hparams
    assert held.shift_weight == 8.0
    # What the checkpoint records is the weight: loading it back does not multiply again.
    again = StyleTransferModule(**{k: held[k] for k in inspect.signature(StyleTransferModule).parameters if k in held})
    assert again.hparams.shift_weight == 8.0
    assert new_style(painting, steady, shift_factor=4.0, shift_weight=3.0).hparams.shift_weight == 3.0


@pytest.mark.parametrize(("settings", "cause"), [
    ({"transformer": {"base_channels": 8, "residual_blocks": 1, "space_to_depth": True}}, "its architecture is"),
    ({"loss_network": "vgg16-caffe"}, "trained against the loss network 'random'"),
    ({"init_from": "x.ckpt"}, "base and init_from"),
    ({"base_lr": -1.0}, "base_lr must be >= 0"),
    ({"shift_noise": -0.1}, "shift_noise must be >= 0"),
    ({"shift_factor": -1.0}, "shift_factor must be >= 0"),
])
def test_a_base_that_does_not_fit_is_a_one_line_error(base: Path, painting: Path, settings: dict, cause: str) -> None:
    with pytest.raises(ValueError, match=r"^[^\n]*$") as info:
        new_style(painting, base, **settings)
    assert cause in str(info.value)


def test_bad_paintings_and_bases_are_one_line_errors(base: Path, painting: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not a painting")
    make_photo(32, 32).save(tmp_path / "waves.png")
    single = write_checkpoint(tmp_path / "one.ckpt", TransformerNet(TransformerConfig(8, 1)), "one")
    for painting_, base_, cause in ((tmp_path / "notes.png", base, "not an image"),
                                    (tmp_path / "missing.png", base, "no such file"),
                                    (tmp_path / "waves.png", base, "already has a style named waves"),
                                    (painting, single, "a single-style network"),
                                    (painting, tmp_path / "nope.ckpt", "no such checkpoint file")):
        with pytest.raises(ValueError, match=r"^[^\n]*$") as info:
            new_style(painting_, base_)
        assert cause in str(info.value), str(info.value)


def test_the_train_command_reports_a_bad_painting_and_writes_nothing(base: Path, photos: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "notes.jpg").write_text("not a painting")
    run_dir = tmp_path / "run"
    args = ["train", "--config", str(RECIPE), *train_args(photos, tmp_path / "notes.jpg", run_dir, 5),
            "--model.base", str(base)]
    assert styletrans_main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: style_image") and "not an image" in err[-1]
    assert not run_dir.exists()


def test_the_bundled_base_is_the_default(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: bundled)
    with pytest.raises(ValueError, match="no base checkpoint ships with this installation"):
        finetune.resolve_base("bundled")
    (bundled / "multistyle9.ckpt").write_bytes(base.read_bytes())
    assert finetune.resolve_base("bundled") == finetune.resolve_base("multistyle9") == bundled / "multistyle9.ckpt"


def test_without_data_the_bundled_photos_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = ContentImages("bundled", image_size=32, num_workers=0)
    data.setup("fit")
    assert len(data.train_files) + len(data.val_files) >= 4 and data.root.name == "photos"


def test_the_recipe_parses_and_defaults_to_the_bundled_base_and_photos(capsys: pytest.CaptureFixture) -> None:
    import yaml

    with pytest.raises(SystemExit) as exit_info:
        train_main(["--config", str(RECIPE), "--model.style_image", "candy.jpg", "--print_config"])
    assert exit_info.value.code == 0
    parsed = yaml.safe_load(capsys.readouterr().out)
    assert parsed["model"]["base"] == "bundled" and parsed["model"]["base_lr"] == 0.0
    assert parsed["data"]["root"] == "bundled" and parsed["samples"]["every_minutes"] == 2
    assert parsed["model"]["content_weight"] is None  # the base's loss
    assert parsed["model"]["shift_weight"] is None and parsed["model"]["shift_factor"] == 4.0  # 4x the base's


def test_a_new_style_run_loads_and_resumes(run: tuple[Path, object], base: Path, painting: Path,
                                           photos: Path) -> None:
    run_dir, cli = run
    last = run_dir / "checkpoints" / "last.ckpt"
    loaded = StyleTransferModule.load_from_checkpoint(last, map_location="cpu")
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.allclose(loaded(x, 2), cli.model.transformer.cpu()(x, 2), atol=1e-6)
    args = ["--config", str(RECIPE), *train_args(photos, painting, run_dir, 34), "--model.base", str(base),
            "--model.lr", "0.05", "--ckpt_path", str(last)]
    resumed = train_main(args)
    assert resumed.trainer.global_step == 34
    start, _ = load_transformer(base)
    state = resumed.model.transformer.cpu().state_dict()
    assert all(torch.equal(state[k][:2] if v.dim() == 2 else state[k], v) for k, v in start.state_dict().items())


def test_a_new_style_runs_with_its_base_margin(painting: Path, tmp_path: Path) -> None:
    net = TransformerNet(TransformerConfig(8, 1, space_to_depth=False, styles=2, margin=8))
    framed = write_checkpoint(tmp_path / "framed.ckpt", net, "framed",
                              style_image=[str(tmp_path / "waves.png"), str(tmp_path / "dots.png")], **BASE_LOSS)
    module = new_style(painting, framed)  # the recipe names the architecture, not the margin: the base's holds
    assert module.transformer.config.margin == 8 and module.hparams.transformer["margin"] == 8
