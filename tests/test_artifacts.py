"""The artifact scores: high for a dot lattice whose phase drifts and for scattered dots, low for photos and
for JPEG's block grid."""

from __future__ import annotations

import io
import math

import pytest
import torch
from PIL import Image
from torchvision.transforms.functional import gaussian_blur

from styletrans.evaluation.artifacts import dot_score, edge_frame_score, lattice_score
from styletrans.images import pil_to_tensor, tensor_to_pil
from tests.conftest import make_photo


def drifting_lattice(height: int, width: int, step: float = 5.0, amplitude: float = 0.08) -> torch.Tensor:
    """Dots every ``step`` pixels along both diagonals, the phase wandering across the picture
    (as the lattice a style network prints: not one clean spectral peak)."""
    y, x = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                          indexing="ij")
    drift = 3.0 * torch.sin(x / 37.0) + 2.0 * torch.cos(y / 29.0)
    u, v = (x + y + drift) / step, (x - y + drift) / step
    return amplitude * torch.cos(2 * math.pi * u) * torch.cos(2 * math.pi * v)


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A smooth picture with fine, irregular texture (as photos and paintings have)."""
    torch.manual_seed(0)
    grain = gaussian_blur(torch.rand(1, 3, 128, 160), kernel_size=5, sigma=1.0)[0]
    return (0.8 * pil_to_tensor(make_photo(160, 128, seed=5)) + 0.4 * (grain - 0.5) + 0.1).clamp(0, 1)


def test_a_drifting_dot_lattice_scores_far_above_the_clean_picture(photo: torch.Tensor) -> None:
    clean = lattice_score(photo)
    latticed = lattice_score((photo + drifting_lattice(*photo.shape[-2:])).clamp(0, 1))
    assert clean < 0.05
    assert latticed > 0.15 and latticed > 4 * clean


def test_jpeg_block_grid_counts_neither_as_a_lattice_nor_as_dots(photo: torch.Tensor) -> None:
    buffer = io.BytesIO()
    tensor_to_pil(photo).save(buffer, "JPEG", quality=10)  # visible 8x8 blocking
    buffer.seek(0)
    compressed = pil_to_tensor(Image.open(buffer).convert("RGB"))
    assert lattice_score(compressed) < 0.05
    assert dot_score(compressed) < 0.01


def test_dot_score_is_the_share_of_pixels_that_stand_out(photo: torch.Tensor) -> None:
    assert dot_score(photo) < 0.01
    generator = torch.Generator().manual_seed(3)
    spots = torch.rand(photo.shape[-2:], generator=generator) < 0.05  # isolated dots on 5 % of the pixels
    dotted = photo.clone()
    dotted[0][spots] = (dotted[0][spots] < 0.5).float()  # red to the far end: a step of at least 0.5
    assert 0.035 < dot_score(dotted) < 0.065
    assert dot_score(dotted[None]) == dot_score(dotted)
    assert dot_score(torch.full((3, 8, 8), 0.5)) == 0.0


def test_score_takes_batches_and_tiny_or_flat_pictures(photo: torch.Tensor) -> None:
    assert lattice_score(photo[None]) == pytest.approx(lattice_score(photo))
    assert lattice_score(torch.full((3, 40, 40), 0.5)) == 0.0  # nothing repeats in a flat picture
    assert 0.0 <= lattice_score(photo[:, :12, :20]) <= 1.0  # smaller than one window: upsampled, not an error


def test_edge_frame_score_is_the_band_along_the_edges_beyond_the_photos_own(photo: torch.Tensor) -> None:
    assert edge_frame_score(photo, photo) == 0.0  # a picture's own edges are no frame
    framed = photo.clone()
    framed[:, :4] = (framed[:, :4] + 0.1).clamp(max=1)  # the top band brighter
    top = float((framed[:, :4] - photo[:, :4]).mul(torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0).mean())
    assert edge_frame_score(framed, photo) == pytest.approx(top * 255 / 4, rel=1e-4)  # one side of four
    framed[:, :, -4:] = (framed[:, :, -4:] - 0.1).clamp(min=0)  # the right band darker: sides do not cancel
    assert edge_frame_score(framed[None], photo[None]) > 1.8 * edge_frame_score(framed[:, :, :-4], photo[:, :, :-4])
    shifted = (photo + 0.2).clamp(max=1)  # a tint changes no step between the band and the inside
    assert edge_frame_score(shifted, photo) < 1.0
    assert edge_frame_score(torch.rand(3, 5, 5), torch.rand(3, 5, 5)) == 0.0  # too small for a band
