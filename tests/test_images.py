"""Image reading and writing: a corpus of bad files generated here, atomic writes."""

from __future__ import annotations

import stat
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styletrans.atomic import OutputExistsError
from styletrans.images import ImageError, find_images, load_image, open_rgb, save_image
from tests.conftest import make_photo


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge size (a decompression bomb's signature)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.fixture
def corpus(tmp_path: Path) -> dict[str, Path]:
    """Good-but-unusual and bad files, keyed by what they are."""
    photo = make_photo(40, 30)
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        files[name] = tmp_path / name
        files[name].write_bytes(data)

    jpeg = tmp_path / "ok.jpg"
    photo.save(jpeg, quality=90)
    put("truncated.jpg", jpeg.read_bytes()[: len(jpeg.read_bytes()) // 2])
    put("empty.png", b"")
    put("text.png", b"this is not an image, just text with a .png name\n")
    put("bomb.png", _png_declaring(100_000, 100_000))
    for name, img in {
        "one_pixel.png": Image.new("RGB", (1, 1), (10, 20, 30)),
        "cmyk.jpg": photo.convert("CMYK"),
        "rgba.png": photo.convert("RGBA"),
        "palette.png": photo.convert("P"),
        "grey.png": photo.convert("L"),
    }.items():
        img.save(tmp_path / name)
        files[name] = tmp_path / name
    deep = (np.asarray(photo.convert("L"), dtype=np.uint16) * 257)  # full 16-bit range
    Image.fromarray(deep).save(tmp_path / "deep16.png")
    files["deep16.png"] = tmp_path / "deep16.png"
    frames = [make_photo(24, 24, seed=s) for s in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    files["anim.gif"] = tmp_path / "anim.gif"
    return files


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("truncated.jpg", "truncated"),
        ("empty.png", "empty"),
        ("text.png", "not a readable image"),
        ("bomb.png", "above the limit"),
    ],
)
def test_bad_files_raise_image_error_naming_the_file(corpus: dict[str, Path], name: str, message: str) -> None:
    with pytest.raises(ImageError, match=message) as info:
        load_image(corpus[name])
    assert name in str(info.value)


def test_missing_file_is_an_image_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.jpg")


@pytest.mark.parametrize("name", ["one_pixel.png", "cmyk.jpg", "rgba.png", "palette.png", "grey.png",
                                  "deep16.png", "anim.gif"])
def test_unusual_files_load_as_rgb_in_unit_range(corpus: dict[str, Path], name: str) -> None:
    image = load_image(corpus[name])
    assert image.dtype == torch.float32 and image.shape[0] == 3
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0


def _pixels(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) grey levels."""
    return np.rint(image.permute(1, 2, 0).numpy() * 255).astype(int)


def _reference(name: str, path: Path) -> np.ndarray:
    """Each unusual file's RGB pixels by a conversion written out here: Pillow's own for
    CMYK, palette and GIF (its first frame), the source photo for the lossless ones, and
    ``value / 65535 * 255`` for 16-bit grey."""
    photo = make_photo(40, 30)
    if name == "one_pixel.png":
        return np.array([[[10, 20, 30]]])
    if name in ("cmyk.jpg", "palette.png", "anim.gif"):
        with Image.open(path) as img:  # a GIF opens at its first frame
            return np.asarray(img.convert("RGB"), dtype=int)
    if name == "rgba.png":
        return np.asarray(photo, dtype=int)
    if name == "deep16.png":
        grey = np.rint(np.asarray(Image.open(path), dtype=float) / 65535 * 255).astype(int)
    else:
        grey = np.asarray(photo.convert("L"), dtype=int)
    return np.repeat(grey[..., None], 3, axis=-1)


@pytest.mark.parametrize("name", ["one_pixel.png", "cmyk.jpg", "rgba.png", "palette.png", "grey.png",
                                  "deep16.png", "anim.gif"])
def test_unusual_files_match_a_reference_conversion(corpus: dict[str, Path], name: str) -> None:
    got = _pixels(load_image(corpus[name]))
    assert np.abs(got - _reference(name, corpus[name])).max() <= 1
    # The reference itself is the photo, to the format's loss: JPEG's, and the 216-colour web
    # palette's with dithering (measured 12 grey levels on average).
    loss = {"cmyk.jpg": 4, "palette.png": 16}
    if name in loss:
        assert np.abs(got - np.asarray(make_photo(40, 30), dtype=int)).mean() < loss[name]


def test_animated_gif_gives_its_first_frame(corpus: dict[str, Path]) -> None:
    got = _pixels(load_image(corpus["anim.gif"]))
    frames = [np.asarray(make_photo(24, 24, seed=s), dtype=int) for s in range(3)]
    errors = [np.abs(got - frame).mean() for frame in frames]
    assert errors[0] < 10 < min(errors[1:])  # GIF's 256 colours cost a few grey levels


def test_sixteen_bit_keeps_its_range_instead_of_clipping(corpus: dict[str, Path]) -> None:
    deep = load_image(corpus["deep16.png"])
    grey = load_image(corpus["grey.png"])
    assert torch.allclose(deep, grey, atol=1 / 255)
    assert float(deep.min()) < 0.3 and float(deep.max()) > 0.7  # the whole range, not clipped white


def test_transparent_pixels_become_white(tmp_path: Path) -> None:
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert torch.all(load_image(tmp_path / "clear.png") == 1.0)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = make_photo(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "rotated.jpg", exif=exif)
    assert tuple(load_image(tmp_path / "rotated.jpg").shape) == (3, 40, 20)


def test_resize_to_longest_side_and_bytes_input(tmp_path: Path) -> None:
    make_photo(80, 40).save(tmp_path / "wide.png")
    assert tuple(load_image(tmp_path / "wide.png", size=20).shape) == (3, 10, 20)
    assert open_rgb((tmp_path / "wide.png").read_bytes()).size == (80, 40)
    with pytest.raises(ImageError, match="empty input"):
        open_rgb(b"")


def test_save_is_atomic_and_never_overwrites_without_flag(tmp_path: Path) -> None:
    out = tmp_path / "out" / "result.png"
    first = torch.zeros(3, 8, 8)
    save_image(first, out)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        save_image(torch.ones(3, 8, 8), out)
    assert torch.equal(load_image(out), first)  # untouched
    save_image(torch.ones(3, 8, 8), out, overwrite=True)
    assert torch.equal(load_image(out), torch.ones(3, 8, 8))
    assert sorted(p.name for p in out.parent.iterdir()) == ["result.png"]  # no temp files left
    (tmp_path / "plain").write_bytes(b"")  # a file made the ordinary way: the mode outputs should have
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE((tmp_path / "plain").stat().st_mode)


def test_failed_encode_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported output extension"):
        save_image(torch.zeros(3, 4, 4), tmp_path / "x.gif")
    assert list(tmp_path.iterdir()) == []


def test_round_trip_is_lossless_for_png(tmp_path: Path) -> None:
    image = torch.randint(0, 256, (3, 9, 7)).float() / 255
    save_image(image, tmp_path / "r.png")
    assert torch.equal(load_image(tmp_path / "r.png"), image)


def test_find_images_recurses_and_skips_hidden_and_other_files(photo_dir: Path) -> None:
    (photo_dir / ".hidden.jpg").write_bytes(b"x")
    (photo_dir / "notes.txt").write_text("x")
    found = find_images(photo_dir)
    assert len(found) == 6 and any(p.parent.name == "nested" for p in found)
