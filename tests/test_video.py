"""Video stylization on tiny generated clips: frames, frame rate and audio survive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch

from styletrans.cli import main
from styletrans.inference import Stylizer
from styletrans.inference.video import VideoError, stylize_video
from styletrans.models.checkpoint import write_checkpoint
from styletrans.models.transformer import TransformerConfig, TransformerNet

FPS, FRAMES, RATE = 8, 10, 16000


def make_video(path: Path, width: int = 48, height: int = 32, audio: bool = True) -> Path:
    """``FRAMES`` frames at ``FPS`` (a moving bar), with a 440 Hz AAC tone if ``audio``."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = container.add_stream("aac", rate=RATE) if audio else None
        for i in range(FRAMES):
            pixels = np.full((height, width, 3), 40 + 15 * i, np.uint8)
            pixels[:, : 4 * i + 4, 1] = 220
            container.mux(video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(video.encode(None))
        if sound is not None:
            samples = RATE * FRAMES // FPS
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / RATE)).astype(np.float32)[None]
            for start in range(0, samples, 1024):
                frame = av.AudioFrame.from_ndarray(tone[:, start:start + 1024], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = RATE, start
                container.mux(sound.encode(frame))
            container.mux(sound.encode(None))
    return path


def probe(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        info = {"fps": video.average_rate, "frames": len(frames), "size": (video.width, video.height),
                "audio": [a.codec_context.name for a in container.streams.audio], "pixels": np.stack(frames)}
    with av.open(str(path)) as container:
        sound = [f.to_ndarray() for f in container.decode(audio=0)] if container.streams.audio else []
    info["sound"] = np.concatenate(sound, axis=-1)[0] if sound else None  # mono samples
    return info


def stylized_frames(stylizer: Stylizer, pixels: np.ndarray, **options: Any) -> np.ndarray:
    """What each decoded source frame (N, H, W, 3) uint8 should become, frame by frame."""
    batch = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255
    out = torch.stack([stylizer.stylize_tensor(frame[None], **options)[0] for frame in batch])
    return out.clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).numpy()


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute difference in grey levels between every frame of ``a`` and of ``b``: (len(a), len(b))."""
    return np.abs(a[:, None].astype(float) - b[None].astype(float)).mean(axis=(2, 3, 4))


def assert_frames_match(result: np.ndarray, expected: np.ndarray) -> None:
    """Frame i of the output is expected frame i (to H.264's loss), and nearer to it than to any
    other frame: every frame was written, in order, none repeated."""
    table = distances(result, expected)
    assert list(table.argmin(axis=1)) == list(range(len(expected)))
    # Measured up to 7 grey levels: 4:2:0 chroma subsampling of tiny, busy frames at CRF 18;
    # other frames are 15 or more away.
    assert table.diagonal().max() < 10


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(2)
    net = TransformerNet(TransformerConfig(base_channels=8, residual_blocks=1))
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt", net, "tiny")


def test_cli_stylizes_a_video_keeping_rate_and_audio(checkpoint: Path, tmp_path: Path) -> None:
    source = make_video(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    args = ["stylize", "--model", str(checkpoint), "--backend", "torch", str(source), "--output-dir", str(out),
            "--quiet", "--batch-size", "3"]
    assert main(args) == 0
    result, original = probe(out / "clip_tiny.mp4"), probe(source)
    assert result["frames"] == original["frames"] == FRAMES
    assert result["fps"] == FPS
    assert result["size"] == (48, 32)
    assert result["audio"] == ["aac"]
    expected = stylized_frames(Stylizer(checkpoint, backend="torch"), original["pixels"])
    assert distances(expected, original["pixels"]).diagonal().min() > 10  # stylizing changes every frame
    assert_frames_match(result["pixels"], expected)
    # The audio is the same tone for as long: same samples to within one AAC frame, 440 Hz, same loudness.
    sound, tone = result["sound"], original["sound"]
    assert abs(len(sound) - len(tone)) <= 1024 and len(tone) >= RATE * FRAMES // FPS
    assert abs(np.fft.rfftfreq(len(sound), 1 / RATE)[np.abs(np.fft.rfft(sound)).argmax()] - 440) < 5
    assert np.sqrt(np.mean(sound ** 2)) == pytest.approx(np.sqrt(np.mean(tone ** 2)), rel=0.1)
    assert main(args) == 1  # the output exists: not overwritten
    assert main([*args, "--overwrite"]) == 0


def test_video_without_audio_resized_to_even_sides(checkpoint: Path, tmp_path: Path) -> None:
    source = make_video(tmp_path / "silent.mp4", width=64, height=40, audio=False)
    stylizer = Stylizer(checkpoint, backend="torch")
    summary = stylize_video(stylizer, source, tmp_path / "small.mp4", size=35, preserve_color=True, progress=False)
    assert summary["frames"] == FRAMES and summary["audio"] is None
    assert summary["size"] == [34, 22]  # 35x22 scaled, then even for H.264 4:2:0
    assert probe(tmp_path / "small.mp4")["size"] == (34, 22)


@pytest.mark.parametrize("options", [{"preserve_color": True}, {"strength": 0.5}], ids=["preserve_color", "strength"])
def test_video_frames_get_colour_preservation_and_strength(checkpoint: Path, tmp_path: Path,
                                                           options: dict[str, Any]) -> None:
    """Each option reaches every frame: the output matches the frames stylized with it, and
    not the frames stylized without it."""
    source = make_video(tmp_path / "clip.mp4", audio=False)
    stylizer = Stylizer(checkpoint, backend="torch")
    stylize_video(stylizer, source, tmp_path / "out.mp4", progress=False, batch_size=4, **options)
    original, result = probe(source)["pixels"], probe(tmp_path / "out.mp4")["pixels"]
    expected = stylized_frames(stylizer, original, **options)
    assert_frames_match(result, expected)
    plain = stylized_frames(stylizer, original)
    assert (distances(result, plain).diagonal() > distances(result, expected).diagonal() + 5).all()


def test_unreadable_video_is_a_clear_error(checkpoint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 but then nothing")
    with pytest.raises(VideoError, match=r"bad\.mp4: not a readable video"):
        stylize_video(Stylizer(checkpoint, backend="torch"), bad, tmp_path / "out.mp4", progress=False)
    assert not (tmp_path / "out.mp4").exists()
