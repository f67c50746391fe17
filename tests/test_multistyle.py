"""One network for many styles (conditional instance norm): baking a style gives the single-style network
that computes the same function; multi-style training scores each sample against its own style, records
every style, and exports one verified ONNX file per style; the stability term and the pan number measure
what they claim. Tiny networks, the random loss network and 32 px photos keep it fast."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from styletrans.cli import main as styletrans_main
from styletrans.evaluation.stability import (
    aligned_change,
    noise_change,
    noise_frames,
    pan_change,
    pan_scores,
    photo_change,
)
from styletrans.losses import PerceptualLoss
from styletrans.models.checkpoint import infer_config, load_transformer, write_checkpoint
from styletrans.models.conditional import ConditionalInstanceNorm2d, bake_style, mix_weights, style_weights
from styletrans.models.transformer import TransformerConfig, TransformerNet
from styletrans.training.cli import main as train_main
from styletrans.training.module import StyleTransferModule
from styletrans.training.stability import random_shift, shift_consistency, shift_noise
from styletrans.vgg import VGGFeatures
from tests.conftest import make_photo
from tests.test_training import read_metrics, train_args


def multistyle_net(styles: int = 3, space_to_depth: bool = True, seed: int = 0) -> TransformerNet:
    """A tiny multi-style network whose styles really differ (random scales and shifts)."""
    torch.manual_seed(seed)
    net = TransformerNet(TransformerConfig(8, 1, space_to_depth=space_to_depth, styles=styles)).eval()
    for module in net.modules():
        if isinstance(module, ConditionalInstanceNorm2d):
            torch.nn.init.normal_(module.weight, 1.0, 0.5)
            torch.nn.init.normal_(module.bias, 0.0, 0.5)
    return net


@pytest.mark.parametrize("space_to_depth", [True, False])
def test_a_baked_style_is_the_conditional_network_for_that_style(space_to_depth: bool) -> None:
    net = multistyle_net(space_to_depth=space_to_depth)
    x = torch.rand(2, 3, 37, 50)
    with torch.no_grad():
        outputs = [net(x, index) for index in range(3)]
        assert (outputs[0] - outputs[1]).abs().mean() > 0.01  # the styles differ
        for index, expected in enumerate(outputs):
            baked = bake_style(net, index)
            assert baked.config.styles == 1 and isinstance(baked.encoder[0][2], torch.nn.InstanceNorm2d)
            assert torch.allclose(baked(x), expected, atol=1e-5)
        mix = mix_weights({0: 0.7, 2: 0.3}, 3)
        assert torch.allclose(bake_style(net, mix)(x), net(x, mix), atol=1e-5)
        # Per-sample styles in one batch: each sample as if it were alone.
        both = net(x, torch.tensor([2, 0]))
        assert torch.allclose(both[0], outputs[2][0], atol=1e-5) and torch.allclose(both[1], outputs[0][1], atol=1e-5)


def test_the_number_of_styles_is_read_from_the_weights(tmp_path: Path) -> None:
    net = multistyle_net(styles=4)
    assert infer_config(net.state_dict()) == net.config
    path = write_checkpoint(tmp_path / "m.ckpt", net, "base", style_image=["a.png", "b.png", "c.png", "d.png"])
    loaded, metadata = load_transformer(path)
    assert loaded.config.styles == 4 and metadata["styles"] == ["a", "b", "c", "d"]
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.allclose(loaded(x, 3), net(x, 3), atol=1e-6)


def test_style_choices_are_checked() -> None:
    net = multistyle_net(styles=3)
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="holds 3 styles"):
        net(x)
    with pytest.raises(ValueError, match="out of range"):
        net(x, 3)
    with pytest.raises(ValueError, match="2 entries"):
        style_weights(torch.tensor([0.5, 0.5]), 3, 1)
    for bad in ({0: -1.0, 1: 2.0}, {0: 0.0, 1: 0.0}):
        with pytest.raises(ValueError, match="must be >= 0 and not all 0"):
            mix_weights(bad, 3)
    assert torch.allclose(mix_weights({0: 3.0, 1: 1.0}, 3), torch.tensor([0.75, 0.25, 0.0]))
    with pytest.raises(ValueError, match="multi-style"):
        bake_style(TransformerNet(TransformerConfig(8, 1)), 0)


def test_each_sample_is_scored_against_its_own_style() -> None:
    encoder = VGGFeatures(["relu1_2", "relu2_2"], weights="random:0")
    layers = {"relu1_2": 1.0, "relu2_2": 0.5}
    styles = [torch.rand(1, 3, 32, 40), torch.rand(1, 3, 48, 32)]  # sizes may differ
    several = PerceptualLoss(encoder, content_layers={}, style_layers=layers)
    several.set_styles(styles, factors=[1.0, 3.0])
    images = torch.rand(2, 3, 32, 32)
    expected = 0.0
    for index, (style, factor) in enumerate(zip([1, 0], [3.0, 1.0], strict=True)):
        one = PerceptualLoss(encoder, content_layers={}, style_layers=layers)
        one.set_style(styles[style])
        expected += factor * float(one(images[index:index + 1]).style) / 2
    assert float(several(images, style_ids=torch.tensor([1, 0])).style) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="pass style_ids"):
        several(images)


def test_the_stability_term_is_zero_for_shift_equivariant_maps_and_not_for_a_strided_one() -> None:
    images = torch.rand(2, 3, 48, 48)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def pointwise(x, style=None):
        return conv(x).sigmoid()

    def strided(x, style=None):  # what a 4 px grid does: blocks that do not move with the picture
        return torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(x, 4), scale_factor=4)

    shifts = {random_shift(step) for step in range(200)}
    assert (0, 0) not in shifts and len(shifts) == 15 and random_shift(7) == random_shift(7)
    with torch.no_grad():
        for shift in shifts:
            assert float(shift_consistency(pointwise, images, pointwise(images), shift)) < 1e-12
            assert float(shift_consistency(strided, images, strided(images), shift)) > 1e-3


def test_training_on_the_stability_term_makes_a_network_follow_the_picture() -> None:
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(8, 1, space_to_depth=True))
    images = torch.rand(4, 3, 40, 40)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    values = []
    for step in range(40):
        loss = shift_consistency(net, images, net(images), random_shift(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        values.append(float(loss.detach()))
    assert sum(values[-5:]) < 0.5 * sum(values[:5]), values


def test_with_noise_in_the_stability_term_a_network_learns_to_ignore_the_noise() -> None:
    torch.manual_seed(1)
    box = torch.ones(3, 1, 5, 5) / 25

    def smooth(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect"), box, groups=3)

    images = ((smooth(smooth(torch.rand(4, 3, 40, 40))) - 0.5) * 4 + 0.5).clamp(0, 1)  # photo-like: smooth
    assert torch.equal(shift_noise(7, images, 0.1), shift_noise(7, images, 0.1))  # resumable: a function of step

    def noise_response(std: float) -> float:
        """Train to reproduce the photos under the stability term, then move the input by fresh noise."""
        torch.manual_seed(0)
        net = TransformerNet(TransformerConfig(8, 1, space_to_depth=True))
        optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
        for step in range(60):
            dy, dx = shift = random_shift(step)
            noise = shift_noise(step, images[..., dy:, dx:], std) if std else None
            output = net(images)
            loss = (output - images).pow(2).mean() + shift_consistency(net, images, output, shift, noise=noise)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            return float((net((images + shift_noise(999, images, 0.05)).clamp(0, 1)) - net(images)).abs().mean())

    assert noise_response(0.1) < 0.85 * noise_response(0.0)  # measured 0.71x


def test_the_pan_number_is_zero_for_a_map_that_follows_the_picture_and_large_for_a_fixed_grid() -> None:
    torch.manual_seed(0)
    photo = torch.rand(3, 48, 80)
    assert pan_change(lambda x: x.clamp(0, 1), photo, 1) == 0.0

    def grid_locked(x):  # a pattern that stays on a 4 px grid while the picture moves
        pattern = torch.zeros(x.shape[-2:])
        pattern[::4, ::4] = 0.5
        return (0.5 * x + pattern).clamp(0, 1)

    assert pan_change(grid_locked, photo, 1) > 10 and pan_change(grid_locked, photo, 4) < 1e-6
    frames_mean_change = float((photo[:, :, 1:65] - photo[:, :, :64])[:, 8:-8, 8:-8].abs().mean()) * 255
    assert photo_change(photo, 1) == pytest.approx(frames_mean_change, rel=1e-2)
    assert set(pan_scores(grid_locked, photo)) == {"fast_1px", "fast_4px", "photo_1px", "fast_noise", "photo_noise"}
    assert pan_scores(grid_locked, photo[:, :, :30]) == {}  # too narrow: no figure rather than a wrong one


def test_the_noise_number_is_zero_for_a_map_that_ignores_noise_and_large_for_one_that_amplifies_it() -> None:
    ys, xs = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 64), indexing="ij")
    photo = torch.stack([0.2 + 0.6 * xs, 0.2 + 0.6 * ys, 0.5 + 0.3 * torch.sin(6 * xs * ys)])  # smooth, like a wall
    frames = noise_frames(photo)
    assert torch.equal(frames, noise_frames(photo))
    assert torch.allclose(frames * 255, (frames * 255).round(), atol=1e-3)  # 8-bit frames, as decoded
    identity = noise_change(lambda x: x, photo)
    assert identity == pytest.approx(aligned_change(frames, 0)) and 0.5 < identity < 2  # ~1.1 levels, mean |diff|
    assert noise_change(lambda x: 0.5 * torch.ones_like(x), photo) == 0.0

    def amplifier(x):  # a "texture" made of the noise: the detail around a 3x3 mean, 10x
        detail = x - F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        return (0.5 + 10 * detail).clamp(0, 1)

    assert noise_change(amplifier, photo) > 5 * identity


@pytest.fixture(scope="module")
def two_styles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("styles")
    make_photo(48, 48, seed=42).save(root / "waves.png")
    make_photo(40, 56, seed=7).save(root / "dots.png")
    return root / "waves.png", root / "dots.png"


@pytest.fixture(scope="module")
def multistyle_run(two_styles: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    photos = tmp_path_factory.mktemp("photos")
    for i in range(6):
        make_photo(40 + 8 * i, 48, seed=i).save(photos / f"p{i}.png")
    run_dir = tmp_path_factory.mktemp("runs") / "multi"
    waves, dots = two_styles
    args = train_args(photos, waves, run_dir, 20, "--model.style_image", f"[{waves}, {dots}]",
                      "--model.style_name", "pair", "--model.shift_weight", "1e3",
                      "--model.style_factors", "{dots: 2.0}")
    return run_dir, train_main(args)


def test_a_multistyle_run_trains_every_style_and_records_them(multistyle_run: tuple[Path, object],
                                                             two_styles: tuple[Path, Path]) -> None:
    run_dir, cli = multistyle_run
    module = cli.model
    assert module.transformer.config.styles == 2 and module.style_names == ["waves", "dots"]
    assert module.style_ids(2, 0).tolist() == [0, 1] and module.style_ids(3, 1).tolist() == [1, 0, 1]
    metrics = read_metrics(run_dir)
    shift = [m["train/shift"] for m in metrics.values() if "train/shift" in m]
    assert shift and all(value > 0 for value in shift)
    style = [metrics[s]["train/style"] for s in sorted(metrics) if "train/style" in metrics[s]]
    assert sum(style[-5:]) < 0.7 * sum(style[:5]), style
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    records = ckpt["styles"]
    assert [r["name"] for r in records] == ["waves", "dots"]
    assert [r["file"] for r in records] == [str(p) for p in two_styles]
    assert all(len(r["sha256"]) == 64 and set(r["grams"]) == {"relu1_2", "relu2_2"} for r in records)
    assert not torch.equal(records[0]["grams"]["relu1_2"], records[1]["grams"]["relu1_2"])
    with Image.open(run_dir / "samples" / "step_000020.png") as grid:
        assert grid.height == 3 * 40 + 4 * 2  # the photos, then a row per style (samples.size 40)
    loaded = StyleTransferModule.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cpu")
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.allclose(loaded(x, 1), module.transformer.cpu()(x, 1), atol=1e-6)


def test_a_multistyle_checkpoint_exports_one_verified_model_per_style(multistyle_run: tuple[Path, object],
                                                                      tmp_path: Path, capsys) -> None:
    run_dir, _ = multistyle_run
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    out = tmp_path / "models"
    assert styletrans_main(["export", str(ckpt), "-o", str(out), "--verify-sizes", "32x40"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["dots.onnx", "waves.onnx"]
    assert capsys.readouterr().out.count("PASS") == 2
    net, _ = load_transformer(ckpt)
    from styletrans.inference import OnnxBackend

    x = torch.rand(1, 3, 36, 44)
    for index, name in enumerate(["waves", "dots"]):
        model = onnx.load(out / f"{name}.onnx")
        props = {p.key: p.value for p in model.metadata_props}
        assert props["style_name"] == name
        assert json.loads(props["base"]) == {"name": "pair", "styles": ["waves", "dots"], "index": index}
        assert json.loads(props["training"])["style_image"].endswith(f"{name}.png")
        with torch.no_grad():
            expected = net(x, index)
        assert (OnnxBackend(out / f"{name}.onnx", provider="cpu")(x) - expected).abs().max() < 1e-3

    # Only the named style, and clear errors for what cannot be done; nothing is half-written.
    assert styletrans_main(["export", str(ckpt), "-o", str(tmp_path / "one"), "--style", "dots",
                            "--verify-sizes", "32x40"]) == 0
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["dots.onnx"]
    assert styletrans_main(["export", str(ckpt), "-o", str(tmp_path / "x"), "--style", "nope"]) == 2
    assert "'nope'" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert styletrans_main(["export", str(ckpt), "-o", str(tmp_path / "a.onnx")]) == 2
    assert "give a folder" in capsys.readouterr().err
    before = (out / "waves.onnx").read_bytes()
    assert styletrans_main(["export", str(ckpt), "-o", str(out)]) == 2  # exists, no --overwrite
    assert (out / "waves.onnx").read_bytes() == before
