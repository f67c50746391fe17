"""The Johnson et al. transformer network: shapes, output range, presets, gradients."""

from __future__ import annotations

import pytest
import torch

from styletrans.models.transformer import TransformerConfig, TransformerNet


@pytest.fixture(scope="module")
def light() -> TransformerNet:
    torch.manual_seed(0)
    return TransformerNet(TransformerConfig.preset("light")).eval()


# Sides below 5 px fail in the 9x9 reflection padding (reported to the lead; not a real input).
@pytest.mark.parametrize("space_to_depth", [False, True])
@pytest.mark.parametrize("hw", [(32, 32), (33, 47), (17, 64), (5, 6), (64, 30), (5, 5), (6, 129)])
def test_any_size_in_gives_the_same_size_out(hw: tuple[int, int], space_to_depth: bool) -> None:
    net = TransformerNet(TransformerConfig(8, 1, space_to_depth=space_to_depth)).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, *hw))
    assert out.shape == (2, 3, *hw)


def test_output_is_in_unit_range_even_for_extreme_inputs(light: TransformerNet) -> None:
    with torch.no_grad():
        out = light(torch.cat([torch.zeros(1, 3, 24, 24), torch.ones(1, 3, 24, 24), 50 * torch.randn(1, 3, 24, 24)]))
    assert out.min() >= 0 and out.max() <= 1
    assert out.std() > 0  # not a constant image


def test_presets_have_the_documented_parameter_counts() -> None:
    def count(name: str) -> int:
        return sum(p.numel() for p in TransformerNet(TransformerConfig.preset(name)).parameters())

    assert count("default") == 1_679_235  # the paper's network: 32/64/128 channels, 5 residual blocks
    assert count("light") == 276_675  # 16/32/64 channels, 3 residual blocks
    assert count("fast") == 193_260  # space-to-depth, 24/48 channels, 4 residual blocks
    with pytest.raises(ValueError, match="unknown transformer preset"):
        TransformerConfig.preset("huge")


def test_every_parameter_gets_a_gradient(light: TransformerNet) -> None:
    net = TransformerNet(TransformerConfig(8, 1))
    net(torch.rand(2, 3, 20, 20)).mean().backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_channels_last_gives_the_same_result(light: TransformerNet) -> None:
    x = torch.rand(2, 3, 28, 36)
    with torch.no_grad():
        reference = light(x)
        net = TransformerNet(light.config).eval()
        net.load_state_dict(light.state_dict())
        net.to(memory_format=torch.channels_last)
        out = net(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(out, reference, atol=1e-5)


@pytest.mark.parametrize("hw", [(32, 32), (17, 23), (5, 6)])
def test_a_margin_runs_the_network_on_replicated_edges_and_cuts_them_off(hw: tuple[int, int]) -> None:
    torch.manual_seed(1)
    plain = TransformerNet(TransformerConfig(8, 1, space_to_depth=True)).eval()
    framed = TransformerNet(TransformerConfig(8, 1, space_to_depth=True, margin=6)).eval()
    framed.load_state_dict(plain.state_dict())  # the margin holds no weights
    x = torch.rand(2, 3, *hw)
    with torch.no_grad():
        out = framed(x)
        expected = plain(torch.nn.functional.pad(x, (6, 6, 6, 6), mode="replicate"))[..., 6:6 + hw[0], 6:6 + hw[1]]
    assert out.shape == x.shape
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(out, plain(x), atol=1e-3)  # the margin changes what the network sees


def test_a_negative_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="margin must be >= 0"):
        TransformerConfig(8, 1, margin=-4)


def _widen_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "train" / "widen_multistyle.py"
    spec = importlib.util.spec_from_file_location("widen_multistyle", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("config", [TransformerConfig(8, 2, space_to_depth=True, styles=3), TransformerConfig(4, 1)])
def test_a_widened_network_computes_what_the_narrow_one_did_and_can_learn(config: TransformerConfig) -> None:
    torch.manual_seed(0)
    narrow = TransformerNet(config).eval()
    for p in narrow.parameters():  # trained-looking weights: not the init's ones and zeros
        p.data.add_(0.1 * torch.randn_like(p))
    wide = _widen_script().widen(narrow, 2 * config.base_channels)
    assert wide.config.base_channels == 2 * config.base_channels
    x, style = torch.rand(2, 3, 20, 28), torch.tensor([0, config.styles - 1])
    # Equal up to float summation order (the zero weights add exact zeros, but kernels may block sums differently)
    torch.testing.assert_close(wide(x, style), narrow(x, style), rtol=0, atol=1e-6)
    wide(x, style).mean().backward()  # the zeros that hide the new channels are trainable: they get gradients
    last = [m for m in wide.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    assert last.weight.grad[:, config.base_channels:].abs().sum() > 0


def test_widening_to_fewer_channels_is_refused() -> None:
    with pytest.raises(ValueError, match="narrower"):
        _widen_script().widen(TransformerNet(TransformerConfig(8, 1)), 4)
