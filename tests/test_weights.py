"""Named weight sources: explicit, checksummed, loaded safely, never a silent fallback."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from styletrans.images import load_image
from styletrans.vgg import VGGFeatures
from styletrans.weights import (
    WeightsError,
    _from_torchvision_features,
    caffe_cache_file,
    layer_names,
    list_sources,
    load_weights,
)
from tests.conftest import requires_caffe_weights


class NotATensor:
    """Saved with pickle; must never be unpickled by a weights loader."""


def test_random_is_seeded() -> None:
    a, b, c = load_weights("random:3"), load_weights("random:3"), load_weights("random:4")
    assert torch.equal(a.state_dict["conv3_1.weight"], b.state_dict["conv3_1.weight"])
    assert not torch.equal(a.state_dict["conv3_1.weight"], c.state_dict["conv3_1.weight"])


@pytest.mark.parametrize("source", ["vgg", "random:x", "caffe"])
def test_unknown_sources_are_rejected(source: str) -> None:
    with pytest.raises(WeightsError):
        load_weights(source)


def test_torchvision_source_fails_clearly_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.models, "vgg16", offline)
    with pytest.raises(WeightsError, match="vgg16-caffe"):
        load_weights("vgg16-torchvision")


def test_file_source_accepts_torchvision_naming(tmp_path: Path) -> None:
    ours = load_weights("random:1").state_dict
    index = {name: i for i, (name, _) in enumerate(layer_names("vgg16"))}
    tv = {f"features.{index[k.split('.')[0]]}.{k.split('.')[1]}": v for k, v in ours.items()}
    tv["classifier.0.weight"] = torch.zeros(2, 2)  # ignored
    torch.save(tv, tmp_path / "tv.pth")
    loaded = load_weights(f"file:{tmp_path / 'tv.pth'}")
    assert loaded.arch == "vgg16" and loaded.normalization == "imagenet"
    assert all(torch.equal(loaded.state_dict[k], v) for k, v in ours.items())
    assert _from_torchvision_features(tv, "vgg16").keys() == ours.keys()


def test_file_source_refuses_pickled_objects(tmp_path: Path) -> None:
    torch.save({"conv1_1.weight": NotATensor()}, tmp_path / "evil.pt")
    with pytest.raises(WeightsError, match="not a loadable"):
        load_weights(f"file:{tmp_path / 'evil.pt'}")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(WeightsError):
        load_weights(f"file:{tmp_path / 'junk.pt'}")
    with pytest.raises(WeightsError, match="not found"):
        load_weights(f"file:{tmp_path / 'missing.pt'}")


def test_list_sources_names_every_source() -> None:
    names = [s.name for s in list_sources()]
    assert names[0] == "vgg16-caffe" and "random[:SEED]" in names


@requires_caffe_weights
def test_caffe_weights_convert_once_and_verify_checksum() -> None:
    weights = load_weights("vgg16-caffe")
    path = caffe_cache_file()
    assert weights.arch == "vgg16" and weights.normalization == "caffe" and path.is_file()
    assert weights.state_dict["conv1_1.weight"].shape == (64, 3, 3, 3)
    mtime = path.stat().st_mtime_ns
    load_weights("vgg16-caffe")
    assert path.stat().st_mtime_ns == mtime  # cached, not converted again

    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="checksum"):
        load_weights("vgg16-caffe")
    path.unlink()  # a later load converts afresh


@requires_caffe_weights
def test_caffe_features_separate_photos_from_noise() -> None:
    """Real ImageNet filters respond to photo structure: a photo's relu4_2 code differs
    far more from its own noised version than from a slightly shifted crop of itself."""
    from styletrans.assets import bundled

    vgg = VGGFeatures(["relu4_2"], weights="vgg16-caffe")
    photo = load_image(bundled("photos")["chelsea"], 128)[None]
    shifted = torch.roll(photo, shifts=2, dims=-1)
    noised = (photo + 0.3 * torch.randn_like(photo)).clamp(0, 1)
    f = vgg(torch.cat([photo, shifted, noised]))["relu4_2"].flatten(1)
    sim = torch.nn.functional.cosine_similarity(f[:1], f[1:])
    assert sim[0] > 0.8 and sim[0] > sim[1] + 0.1
