"""The one image-optimization loop: optimizers, regularizers, records, callbacks."""

from __future__ import annotations

import math

import pytest
import torch

from styletrans.optimize.engine import (
    L2,
    LBFGS,
    Clamp,
    ClipSmallValues,
    GaussianBlur,
    Jitter,
    PixelImage,
    TotalVariation,
    gaussian_blur,
    optimize_image,
)

TARGET = torch.linspace(0, 1, 3 * 8 * 8).reshape(1, 3, 8, 8)


def _distance(image: torch.Tensor) -> torch.Tensor:
    return (image - TARGET).pow(2).mean()


@pytest.mark.parametrize(("optimizer", "lr", "iterations"),
                         [("lbfgs", 1.0, 20), ("adam", 0.05, 150), ("sgd", 20.0, 150), ("normalized-sgd", 0.01, 150)])
def test_every_optimizer_reaches_a_quadratic_minimum(optimizer: str, lr: float, iterations: int) -> None:
    result = optimize_image(PixelImage(torch.full_like(TARGET, 0.5)), _distance, optimizer=optimizer,
                            lr=lr, iterations=iterations, progress=False)
    assert len(result.history) == iterations
    assert result.losses[-1] < 0.05 * result.losses[0]
    assert _distance(result.image) < 1e-3


def test_pixel_scale_shows_the_same_image_and_sets_the_first_lbfgs_step() -> None:
    start = torch.full_like(TARGET, 0.5)
    scaled = PixelImage(start, scale=255.0)
    assert torch.equal(scaled(), start) and float(scaled.pixels.max()) == pytest.approx(127.5)
    # With a large gradient (|g|_1 > 1 in both units), L-BFGS's first step is g / |g|_1 in the
    # parameter's units (L1 length 1): 255x shorter in image units when pixels are stored times 255.
    moved = {}
    for scale in (1.0, 255.0):
        result = optimize_image(PixelImage(start, scale=scale), lambda image: 1e6 * _distance(image),
                                iterations=1, progress=False)
        moved[scale] = float((result.image - start).abs().sum())
    assert moved[1.0] == pytest.approx(1.0, rel=1e-3) and moved[255.0] == pytest.approx(1 / 255, rel=1e-3)


def test_records_objective_parts_and_penalties_and_calls_back() -> None:
    class Terms:
        def __init__(self, total: torch.Tensor) -> None:
            self.total = total

        def as_floats(self) -> dict[str, float]:
            return {"distance": float(self.total)}

    seen = []
    result = optimize_image(PixelImage(torch.rand(1, 3, 8, 8)), lambda x: Terms(_distance(x)),
                            regularizers=[TotalVariation(0.1)], optimizer="adam", lr=0.01, iterations=3,
                            callback=lambda step, image, record: seen.append((step, image.shape, record)),
                            progress=False)
    assert [s[0] for s in seen] == [0, 1, 2] and seen[0][1] == (1, 3, 8, 8)
    record = result.history[0]
    assert set(record) == {"loss", "distance", "TotalVariation"}
    assert record["loss"] == pytest.approx(record["distance"] + record["TotalVariation"], rel=1e-5)


def test_clamp_keeps_pixels_valid_even_when_the_objective_pushes_out() -> None:
    result = optimize_image(PixelImage(torch.rand(1, 3, 8, 8)), lambda x: -x.mean(), regularizers=[Clamp()],
                            optimizer="sgd", lr=100.0, iterations=5, progress=False)
    assert result.image.min() >= 0 and result.image.max() <= 1
    assert torch.allclose(result.image, torch.ones_like(result.image))


def test_tv_and_l2_penalties_smooth_and_center() -> None:
    noisy = torch.rand(1, 3, 16, 16)
    result = optimize_image(PixelImage(noisy), lambda x: x.sum() * 0, regularizers=[TotalVariation(1.0), L2(1.0)],
                            optimizer="adam", lr=0.02, iterations=100, progress=False)
    assert result.losses[-1] < 0.2 * result.losses[0]
    assert (result.image - 0.5).abs().mean() < (noisy - 0.5).abs().mean()


def test_jitter_rolls_the_image_the_objective_sees() -> None:
    torch.manual_seed(0)
    image = torch.arange(16.0).reshape(1, 1, 4, 4)
    moved = [not torch.equal(Jitter(1).transform(image), image) for _ in range(20)]
    assert any(moved)
    assert torch.equal(Jitter(0).transform(image), image)


def test_blur_every_k_steps_and_small_value_clipping() -> None:
    pixels = torch.rand(1, 3, 16, 16)
    blurred = pixels.clone()
    GaussianBlur(1.0, every=2).after_step(blurred, step=0)
    assert torch.equal(blurred, pixels)  # not on this step
    GaussianBlur(1.0, every=2).after_step(blurred, step=1)
    assert blurred.std() < pixels.std()
    assert torch.allclose(gaussian_blur(torch.full((1, 3, 8, 8), 0.7), 2.0), torch.full((1, 3, 8, 8), 0.7))

    clipped = pixels.clone()
    ClipSmallValues(50).after_step(clipped, step=0)
    frac_center = (clipped == 0.5).all(dim=1).float().mean()
    assert 0.4 < frac_center < 0.6


def test_lbfgs_takes_the_steps_of_torchs_lbfgs() -> None:
    """Uncapped, the engine's L-BFGS is torch.optim.LBFGS run one iteration per step (float64)."""
    torch.manual_seed(0)
    a = torch.randn(30, 30, dtype=torch.float64)
    a, b = a @ a.T + torch.eye(30, dtype=torch.float64), torch.randn(30, dtype=torch.float64)

    def trajectory(make: object) -> torch.Tensor:
        x = torch.zeros(30, dtype=torch.float64, requires_grad=True)
        opt = make(x)  # type: ignore[operator]

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = 0.5 * x @ a @ x - b @ x + 0.01 * (x**4).sum()
            loss.backward()
            return loss

        steps = []
        for _ in range(15):
            opt.step(closure)
            steps.append(x.detach().clone())
        return torch.stack(steps)

    ours = trajectory(lambda x: LBFGS([x]))
    theirs = trajectory(lambda x: torch.optim.LBFGS([x], max_iter=1, history_size=50, tolerance_grad=0,
                                                    tolerance_change=0))
    assert ours[-1].abs().max() > 0.1  # it moves
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-10)


def test_lbfgs_max_step_bounds_every_step_and_still_converges() -> None:
    """A Gram-matrix loss from a near-black start (the style loss's shape). Uncapped, as torch's
    L-BFGS, the second step moves pixels by 81 (1600x the cap), the loss jumps 1e11-fold and the
    run then stalls at 96 % of its start. Capped, no step moves further than the cap, the loss
    never rises above its start and falls 1000-fold."""
    def gram_loss(image: torch.Tensor) -> torch.Tensor:
        features = image.flatten(1)
        return 1e3 * (features @ features.T - 1).pow(2).sum()

    moves: dict[float, list[float]] = {}
    for cap in (math.inf, 0.05):
        torch.manual_seed(0)
        previous = [0.01 * torch.rand(1, 3, 8, 8)]
        moves[cap] = []

        def record(step: int, image: torch.Tensor, _: dict, cap: float = cap, previous: list = previous) -> None:
            moves[cap].append(float((image - previous[0]).abs().max()))
            previous[0] = image.clone()

        result = optimize_image(PixelImage(previous[0].clone()), gram_loss, iterations=60, max_step=cap,
                                callback=record, progress=False)
    assert max(moves[math.inf]) > 2 * 0.05
    assert max(moves[0.05]) <= 0.05 + 1e-6
    assert max(result.losses) == result.losses[0] and result.losses[-1] < 1e-3 * result.losses[0]


def test_non_finite_loss_is_reported() -> None:
    with pytest.raises(FloatingPointError, match="iteration 0"):
        optimize_image(PixelImage(torch.rand(1, 3, 4, 4)), lambda x: x.sum() * float("nan"),
                       optimizer="adam", iterations=2, progress=False)


def test_unknown_optimizer() -> None:
    with pytest.raises(ValueError, match="lbfgs"):
        optimize_image(PixelImage(torch.rand(1, 3, 4, 4)), _distance, optimizer="rmsprop", progress=False)
