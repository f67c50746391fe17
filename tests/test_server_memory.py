"""Bounded server memory: a per-batch pixel budget, ONNX Runtime memory modes (same
results; the arena off or shrunk), and the serve settings and flags that set them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch

from styletrans.cli import build_parser
from styletrans.commands.serve import settings_from_args
from styletrans.export import export_onnx
from styletrans.inference import OnnxBackend, Stylizer
from styletrans.inference.backends import MEMORY_MODES
from styletrans.models.transformer import TransformerConfig, TransformerNet
from styletrans.serving.app import BatchKey, Service
from styletrans.serving.batching import Batcher
from styletrans.serving.settings import ServeSettings

TINY = TransformerConfig(base_channels=8, residual_blocks=1)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models")
    return export_onnx(TransformerNet(TINY).eval(), folder / "tiny.onnx", metadata={"style_name": "tiny"})


def batch_sizes(limit: int | None, keys: list[str], max_batch_size: int = 8) -> list[tuple[str, int]]:
    """Submit ``keys`` at once; the (key, size) of every batch the batcher formed, in order."""
    seen: list[tuple[str, int]] = []

    def run(key: object, items: list) -> list:
        seen.append((str(key), len(items)))
        return items

    async def main() -> None:
        batcher = Batcher(run, max_batch_size=max_batch_size, batch_timeout_s=0.05,
                          batch_limit=None if limit is None else (lambda key: limit if key == "big" else 99))
        await batcher.start()
        try:
            assert await asyncio.gather(*(batcher.submit(k, i) for i, k in enumerate(keys))) == list(range(len(keys)))
        finally:
            await batcher.stop()

    asyncio.run(main())
    return seen


def test_batch_limit_caps_batches_of_its_key_only() -> None:
    keys = ["big"] * 5 + ["small"] * 5
    assert sorted(batch_sizes(None, keys)) == [("big", 5), ("small", 5)]
    assert sorted(batch_sizes(2, keys)) == [("big", 1), ("big", 2), ("big", 2), ("small", 5)]
    # never more than max_batch_size, never fewer than one per call
    assert sorted(batch_sizes(0, ["big"] * 2 + ["small"] * 3, max_batch_size=2)) == [
        ("big", 1), ("big", 1), ("small", 1), ("small", 2)]


def test_service_fits_batches_into_the_pixel_budget(model: Path) -> None:
    settings = ServeSettings(models_dir=model.parent, max_batch_pixels=2048 * 2048, reload_interval_s=0)
    service = Service(settings)
    served = service.store.reload() and service.store.models["tiny"]
    assert service.batch_limit(BatchKey(served, 2048, 2048)) == 1
    assert service.batch_limit(BatchKey(served, 2048, 1365)) == 1
    assert service.batch_limit(BatchKey(served, 1024, 1024)) == 4
    assert service.batch_limit(BatchKey(served, 512, 512)) == 16  # then max_batch_size (8) caps it
    assert service.batch_limit(BatchKey(served, 4096, 4096)) == 1  # one image always runs
    assert served.stylizer.backend.memory == settings.memory == "no-arena"


@pytest.mark.parametrize("memory", MEMORY_MODES)
def test_memory_modes_compute_the_same_result(model: Path, memory: str) -> None:
    x = torch.rand(2, 3, 45, 61)
    expected = OnnxBackend(model, provider="cpu")(x)
    backend = Stylizer(model, backend="onnx", provider="cpu", memory=memory).backend
    assert isinstance(backend, OnnxBackend) and backend.memory == memory
    for _ in range(2):  # and again after the arena was shrunk / the memory returned
        torch.testing.assert_close(backend(x), expected)
    assert backend.session.get_session_options().enable_cpu_mem_arena == (memory != "no-arena")


def test_invalid_memory_settings_are_refused(model: Path) -> None:
    with pytest.raises(ValueError, match="memory mode"):
        OnnxBackend(model, provider="cpu", memory="none")
    with pytest.raises(ValueError, match="max_batch_pixels"):
        ServeSettings(models_dir=model.parent, max_batch_pixels=0)
    with pytest.raises(ValueError, match="memory"):
        ServeSettings(models_dir=model.parent, memory="swap")
    with pytest.raises(ValueError, match="precision"):
        ServeSettings(models_dir=model.parent, precision="int4")


def test_serve_flags_set_the_memory_bounds(model: Path) -> None:
    args = build_parser().parse_args(["serve", "--models-dir", str(model.parent)])
    defaults = settings_from_args(args)
    assert (defaults.memory, defaults.max_batch_pixels, defaults.precision) == ("no-arena", 2048 * 2048, "auto")
    args = build_parser().parse_args(["serve", "--models-dir", str(model.parent), "--memory", "arena",
                                      "--max-batch-pixels", "1000000", "--precision", "float"])
    settings = settings_from_args(args)
    assert (settings.memory, settings.max_batch_pixels, settings.precision) == ("arena", 1_000_000, "float")
