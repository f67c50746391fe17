from __future__ import annotations

import pytest
import torch

from styletrans.diagnostics.efros_leung import efros_leung


def test_every_synthesized_pixel_is_copied_from_the_sample():
    sample = torch.rand(3, 20, 20, generator=torch.Generator().manual_seed(0))
    out = efros_leung(sample, (12, 14), window=5, batch=8)
    assert out.shape == (3, 12, 14)
    colours = sample.flatten(1).T
    matches = (out.flatten(1).T[:, None, :] == colours[None]).all(-1).any(-1)
    assert matches.all()
    assert torch.equal(out, efros_leung(sample, (12, 14), window=5, batch=8))  # seeded


def test_a_periodic_texture_stays_periodic():
    stripes = torch.zeros(3, 24, 24)
    stripes[:, :, ::4] = 1.0  # vertical lines every 4 pixels
    out = efros_leung(stripes, (16, 16), window=7, error_threshold=0.0)
    columns = out[0].mean(0)
    assert torch.all((columns == 0) | (columns == 1))  # every column uniform: no broken lines
    assert int(columns.sum()) == 4


def test_bad_windows_are_refused():
    with pytest.raises(ValueError, match="odd"):
        efros_leung(torch.rand(3, 20, 20), (8, 8), window=4)
    with pytest.raises(ValueError, match="too small"):
        efros_leung(torch.rand(3, 8, 8), (8, 8), window=7)
