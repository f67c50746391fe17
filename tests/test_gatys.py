"""Style transfer, texture synthesis and feature inversion on a tiny random VGG, and the defaults on
the real one."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from styletrans.assets import bundled
from styletrans.color import keep_colors, rgb_to_yiq, yiq_to_rgb
from styletrans.images import load_image
from styletrans.optimize.gatys import (
    GatysSettings,
    default_settings,
    invert_features,
    run_gatys,
    synthesize_texture,
)
from tests.conftest import requires_caffe_weights


def _settings(**kwargs) -> GatysSettings:
    # A tiny random VGG's absolute Gram terms are about 1e-3: L-BFGS's first step (1 pixel unit) would
    # barely move them, so these tests use scale-free relative terms over [0, 1] pixels.
    base = dict(loss_network="random:0", content_layers={"relu2_1": 1.0},
                style_layers={"relu1_1": 1.0, "relu2_1": 1.0}, style_weight=10.0, tv_weight=0.1, iterations=15,
                content_weight=1.0, relative_style=True, pixel_scale=1.0, clip_every_step=True,
                max_step=math.inf)
    return GatysSettings(**{**base, **kwargs})


@pytest.fixture
def content() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.nn.functional.interpolate(torch.rand(1, 3, 6, 6), size=(24, 32), mode="bilinear")[0]


@pytest.fixture
def style() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(3, 24, 24)


def test_style_transfer_lowers_the_loss_and_keeps_the_content_size(content, style) -> None:
    result = run_gatys(content, style, _settings(), progress=False)
    assert result.image.shape == (1, 3, 24, 32)
    first, last = result.history[0], result.history[-1]
    assert last["loss"] < 0.7 * first["loss"] and last["style"] < 0.5 * first["style"]
    assert result.history[0]["content"] == pytest.approx(0.0, abs=1e-6)  # started from the content
    assert result.image.min() >= 0 and result.image.max() <= 1


def test_texture_synthesis_matches_style_statistics_from_noise(style) -> None:
    result = synthesize_texture(style, (20, 20), _settings(tv_weight=0.0, iterations=25), progress=False)
    assert result.image.shape == (1, 3, 20, 20)
    assert result.history[-1]["content"] == 0.0
    assert result.losses[-1] < 0.2 * result.losses[0]


def test_feature_inversion_reconstructs_the_layer_code(content) -> None:
    result = invert_features(content, "relu1_1", _settings(tv_weight=0.0, iterations=30), progress=False)
    assert result.history[-1]["style"] == 0.0
    assert result.losses[-1] < 0.1 * result.losses[0]
    # relu1_1 keeps almost everything: the reconstruction approaches the photo itself.
    assert (result.image[0] - content).abs().mean() < (0.5 - content).abs().mean()


def test_coarse_to_fine_runs_each_scale_its_iterations(content, style) -> None:
    """5 steps at a quarter, 3 at half size, then 2 at the full size, which is the output's."""
    shapes: list[tuple[int, ...]] = []
    settings = _settings(iterations=2, coarse_iterations=(5, 3))
    result = run_gatys(content, style, settings, output_size=(64, 96), progress=False,
                       callback=lambda step, image, record: shapes.append(tuple(image.shape[-2:])))
    assert shapes == [(16, 24)] * 5 + [(32, 48)] * 3 + [(64, 96)] * 2
    assert len(result.history) == 10 and result.image.shape == (1, 3, 64, 96)


def test_coarse_scales_scale_the_style_image_alike(content) -> None:
    """Strokes keep their size against the picture: at half the output size, the style is halved too."""
    settings = _settings(iterations=1, coarse_iterations=(1, 1))
    loss = settings.build_loss()
    style_shapes: list[tuple[int, ...]] = []
    set_style = loss.set_style
    loss.set_style = lambda image: (style_shapes.append(tuple(image.shape[-2:])), set_style(image))[1]
    run_gatys(content, torch.rand(3, 64, 80), settings, output_size=(64, 96), loss=loss, progress=False)
    assert style_shapes == [(16, 20), (32, 40), (64, 80)]


def test_noise_init_is_seeded(content, style) -> None:
    def first_image(seed: int, init: str = "noise") -> torch.Tensor:
        images: list[torch.Tensor] = []
        run_gatys(content, style, _settings(init=init, iterations=1), seed=seed, progress=False,
                  callback=lambda step, image, record: images.append(image))
        return images[0]

    a = run_gatys(content, style, _settings(init="noise", iterations=2), seed=5, progress=False)
    b = run_gatys(content, style, _settings(init="noise", iterations=2), seed=5, progress=False).image
    assert torch.equal(a.image, b)
    # The noise is used: the start is far from the photo (the content init starts at loss 0)
    # and another seed gives another start.
    assert a.history[0]["content"] > 0.01
    assert (first_image(5) - first_image(6)).abs().mean() > 0.02
    assert (first_image(5) - content).abs().mean() > 0.1 > (first_image(5, "content") - content).abs().mean()


def test_preserve_color_keeps_the_content_chrominance(content, style) -> None:
    kept = run_gatys(content, style, _settings(iterations=5), preserve_color=True, progress=False).image[0]
    plain = run_gatys(content, style, _settings(iterations=5), progress=False).image[0]
    iq_content = rgb_to_yiq(content)[1:]
    assert (rgb_to_yiq(kept)[1:] - iq_content).abs().mean() < 0.02
    assert (rgb_to_yiq(plain)[1:] - iq_content).abs().mean() > 0.05  # without it the colours move
    # The luminance is the stylized one, not the photo's (measured 0.06; the photo returned as it is gives 0).
    assert (rgb_to_yiq(kept)[0] - rgb_to_yiq(content)[0]).abs().mean() > 0.03


def test_yiq_round_trip_and_keep_colors() -> None:
    x = torch.rand(2, 3, 5, 5)
    assert torch.allclose(yiq_to_rgb(rgb_to_yiq(x)), x, atol=1e-5)
    assert torch.allclose(keep_colors(x, x), x, atol=1e-5)


def test_needs_an_input() -> None:
    with pytest.raises(ValueError, match="content image, a style image"):
        run_gatys(None, None, _settings())


def test_the_default_schedule_runs_most_iterations_at_half_size() -> None:
    assert default_settings((256, 171)).coarse_iterations == () and default_settings((256, 171)).iterations == 200
    photo, square = default_settings((341, 512)), default_settings((512, 512))
    assert photo.coarse_iterations == (150,) and photo.iterations == 20
    assert square.coarse_iterations == (100,) and square.iterations == 20  # 1.5x the pixels: the time holds


@pytest.mark.weights
@requires_caffe_weights
def test_the_defaults_on_the_caffe_vgg_stylize_without_diverging() -> None:
    """The default losses, pixel units and unclipped L-BFGS on the real loss network (chelsea x
    starry_night at 64 px, 40 iterations): the style term falls 5x, the content stays near the photo."""
    photo = load_image(bundled("photos")["chelsea"], 64)
    painting = load_image(bundled("styles")["starry_night"], 64)
    result = run_gatys(photo, painting, replace(default_settings((43, 64)), iterations=40), progress=False)
    first, last = result.history[0], result.history[-1]
    assert all(math.isfinite(record["loss"]) for record in result.history)
    assert last["style"] < 0.2 * first["style"] and last["loss"] < 0.5 * first["loss"]
    assert result.image.min() >= 0 and result.image.max() <= 1
    assert (result.image[0] - photo).abs().mean() < 0.25  # restyled, not replaced
