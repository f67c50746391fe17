"""Video stylization on tiny generated clips: frames, frame rate and audio survive."""

from __future__ import annotations

from pathlib import Path

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
        return {"fps": video.average_rate, "frames": len(frames), "size": (video.width, video.height),
                "audio": [a.codec_context.name for a in container.streams.audio], "first": frames[0]}


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
    assert np.abs(result["first"].astype(int) - original["first"].astype(int)).mean() > 10  # it was stylized
    assert main(args) == 1  # the output exists: not overwritten
    assert main([*args, "--overwrite"]) == 0


def test_video_without_audio_resized_to_even_sides(checkpoint: Path, tmp_path: Path) -> None:
    source = make_video(tmp_path / "silent.mp4", width=64, height=40, audio=False)
    stylizer = Stylizer(checkpoint, backend="torch")
    summary = stylize_video(stylizer, source, tmp_path / "small.mp4", size=35, preserve_color=True, progress=False)
    assert summary["frames"] == FRAMES and summary["audio"] is None
    assert summary["size"] == [34, 22]  # 35x22 scaled, then even for H.264 4:2:0
    assert probe(tmp_path / "small.mp4")["size"] == (34, 22)


def test_unreadable_video_is_a_clear_error(checkpoint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 but then nothing")
    with pytest.raises(VideoError, match=r"bad\.mp4: not a readable video"):
        stylize_video(Stylizer(checkpoint, backend="torch"), bad, tmp_path / "out.mp4", progress=False)
    assert not (tmp_path / "out.mp4").exists()
