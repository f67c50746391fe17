from __future__ import annotations

import pytest

from styletrans.diagnostics import Context, MaxPatches


def test_top_patches_are_the_strongest_units_in_descending_order(photo_dir, tmp_path):
    ctx = Context(folder=photo_dir, features="tiny-random", progress=False)
    result = MaxPatches(layer="relu2", channels=(0, 5), k=3, size=32).run(ctx)
    assert result.summary["receptive_field"] == [8, 8]
    _, images = ctx.folder_images(32)
    acts = ctx.features.activations(images, ["relu2"])["relu2"]
    inside = ctx.features.receptive_field("relu2", 32).inside((16, 16), (32, 32))
    assert inside.sum() == 12 * 12  # units 2..13 of 16: fields [2i - 3, 2i + 5) within 32 pixels
    for entry in result.summary["channels"]:
        values = [p["activation"] for p in entry["patches"]]
        assert values == sorted(values, reverse=True) and len(values) == 3
        assert values[0] == pytest.approx(float(acts[:, entry["channel"], inside].max()), rel=1e-5)
        assert len({p["path"] for p in entry["patches"]}) == 3  # one patch per image
        for patch in entry["patches"]:
            top, left, bottom, right = patch["box"]
            assert (bottom - top, right - left) == (8, 8)
            assert top >= 0 and left >= 0 and bottom <= 32 and right <= 32  # no padding in view
    assert [len(row) for row in result.rows] == [3, 3]
    result.save(tmp_path / "max.png")


def test_out_of_range_channels_are_refused(photo_dir):
    with pytest.raises(ValueError, match="out of range"):
        MaxPatches(layer="relu2", channels=(99,), size=32).run(
            Context(folder=photo_dir, features="tiny-random", progress=False))


def test_several_patches_per_image_come_from_units_half_a_field_apart(photo_dir):
    ctx = Context(folder=photo_dir, features="tiny-random", progress=False)
    result = MaxPatches(layer="relu2", channels=(3,), k=12, per_image=3, size=32).run(ctx)
    patches = result.summary["channels"][0]["patches"]
    assert len(patches) == 12 and len({p["path"] for p in patches}) < 12
    by_image: dict[str, list[list[int]]] = {}
    for patch in patches:
        by_image.setdefault(patch["path"], []).append(patch["unit"])
    assert max(len(units) for units in by_image.values()) <= 3
    for units in by_image.values():  # 8-pixel fields at stride 2: local maxima over +-2 units
        for a in range(len(units)):
            for b in range(a):
                assert max(abs(units[a][0] - units[b][0]), abs(units[a][1] - units[b][1])) > 2
