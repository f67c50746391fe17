"""Stylize a video: decode (PyAV), stylize frames in batches, re-encode as H.264.

Frame timestamps are carried over unchanged, so the output keeps the source's frame
rate (variable rates included); the first audio track is copied without re-encoding
(or re-encoded to AAC when the output container cannot hold its codec).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from styletrans.atomic import atomic_path
from styletrans.inference.stylizer import Stylizer

if TYPE_CHECKING:
    from styletrans.inference.temporal import TemporalSettings

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg")
# Audio codecs an .mp4 can carry as they are.
MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"}


class VideoError(ValueError):
    """A video could not be read or written (the message names the file)."""


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def output_suffix(path: str | os.PathLike) -> str:
    """``.mkv``/``.mov`` stay as they are; everything else becomes ``.mp4`` (H.264)."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in (".mkv", ".mov") else ".mp4"


def _even_size(width: int, height: int, size: int | None) -> tuple[int, int]:
    """Output size: longest side ``size`` if given, both sides even (H.264 4:2:0 needs it)."""
    if size is not None:
        scale = size / max(width, height)
        width, height = round(width * scale), round(height * scale)
    return max(2, width - width % 2), max(2, height - height % 2)


def read_frames(source: str | os.PathLike, *, size: int | None = None, limit: int | None = None,
                start: int = 0) -> Iterator[np.ndarray]:
    """The frames of ``source`` as (H, W, 3) uint8 RGB, in order, sized as ``stylize_video``
    sizes its output (longest side ``size``, even sides); ``start`` frames skipped, at most ``limit``."""
    import av

    try:
        container = av.open(os.fspath(source))
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"{source}: not a readable video ({exc})") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{source}: no video stream")
        video = container.streams.video[0]
        width, height = _even_size(video.codec_context.width, video.codec_context.height, size)
        taken = 0
        for index, frame in enumerate(container.decode(video)):
            if index < start:
                continue
            if limit is not None and taken >= limit:
                break
            yield frame.to_ndarray(width=width, height=height, format="rgb24")
            taken += 1


def stylize_video(stylizer: Stylizer, source: str | os.PathLike, output: str | os.PathLike, *,
                  size: int | None = None, strength: float = 1.0, preserve_color: bool = False,
                  batch_size: int = 4, overwrite: bool = False, progress: bool = True,
                  crf: int = 18, temporal: TemporalSettings | None = None) -> dict[str, Any]:
    """Write the stylized ``source`` to ``output`` atomically; return a summary dict.

    ``temporal``: carry each output frame forward along the source's optical flow and blend it
    with the next one (``styletrans.inference.temporal``); None stylizes frame by frame.
    """
    import av
    from tqdm import tqdm

    blender = None
    if temporal is not None:
        from styletrans.inference.temporal import TemporalBlender

        blender = TemporalBlender(temporal)

    source, output = Path(source), Path(output)
    try:
        container = av.open(os.fspath(source))
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"{source}: not a readable video ({exc})") from None
    with container, atomic_path(output, overwrite=overwrite) as tmp:
        if not container.streams.video:
            raise VideoError(f"{source}: no video stream")
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        width, height = _even_size(video.codec_context.width, video.codec_context.height, size)
        rate = video.average_rate or video.guessed_rate or Fraction(25)
        frames_done = 0
        with av.open(os.fspath(tmp), "w", format=output.suffix.lstrip(".").replace("mkv", "matroska")) as sink:
            encoder = sink.add_stream("libx264", rate=rate)
            encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
            # Both time bases: with the codec's left unset PyAV derives it from the average rate, and
            # the frames' times are rounded to that grid (a variable rate lost).
            encoder.time_base = encoder.codec_context.time_base = video.time_base
            # veryfast: half medium's encode time at 640x480 and crf 18, at the same file size
            # (benchmarks/video_encode.py: 9.2 against 18.8 ms per frame, 215 against 225 kB).
            encoder.options = {"crf": str(crf), "preset": "veryfast"}
            audio_out, audio_copy = None, False
            if audio is not None:
                audio_copy = output.suffix != ".mp4" or audio.codec_context.name in MP4_AUDIO
                audio_out = (sink.add_stream_from_template(audio) if audio_copy
                             else sink.add_stream("aac", rate=audio.codec_context.sample_rate))

            pending: list[Any] = []  # decoded frames waiting for a full batch
            # With the blend, batch k is blended on a worker thread while the network runs batch k + 1
            # (OpenCV and ONNX Runtime release the GIL): the two use both cores. Encoding and muxing
            # stay on this thread, in order.
            blending: tuple[list[Any], Future] | None = None
            pool = ThreadPoolExecutor(1, thread_name_prefix="blend") if blender is not None else None

            def encode(frames: list[Any], out: np.ndarray) -> None:
                nonlocal frames_done
                for source_frame, pixels in zip(frames, out, strict=True):
                    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
                    frame.pts, frame.time_base = source_frame.pts, source_frame.time_base
                    for packet in encoder.encode(frame):
                        sink.mux(packet)
                frames_done += len(frames)
                bar.update(len(frames))

            def blend(arrays: np.ndarray, out: np.ndarray) -> np.ndarray:
                # frame by frame, in order: each blend needs the one before
                return _to_bytes(np.stack([blender(a, f) for a, f in zip(arrays, out, strict=True)]))

            def finish_blend() -> None:
                nonlocal blending
                if blending is not None:
                    frames, future = blending
                    blending = None
                    encode(frames, future.result())

            def flush() -> None:
                nonlocal blending
                if not pending:
                    return
                arrays = np.stack([f.to_ndarray(width=width, height=height, format="rgb24") for f in pending])
                batch = torch.from_numpy(arrays).permute(0, 3, 1, 2).float().div_(255.0)
                out = stylizer.stylize_tensor(batch, strength=strength, preserve_color=preserve_color)
                out = out.clamp(0, 1).permute(0, 2, 3, 1).numpy()
                frames = list(pending)
                pending.clear()
                if pool is None:
                    encode(frames, _to_bytes(out))
                    return
                finish_blend()
                blending = frames, pool.submit(blend, arrays, out)

            streams = [video] + ([audio] if audio is not None else [])
            with tqdm(total=video.frames or None, unit="frame", desc=source.name, disable=not progress) as bar:
                try:
                    for packet in container.demux(*streams):
                        if packet.stream is audio:
                            if audio_copy:
                                if packet.dts is not None:  # the demuxer's empty flush packet
                                    packet.stream = audio_out
                                    sink.mux(packet)
                            else:
                                for frame in packet.decode():
                                    sink.mux(audio_out.encode(frame))
                            continue
                        for frame in packet.decode():
                            pending.append(frame)
                            if len(pending) >= batch_size:
                                flush()
                    flush()
                    finish_blend()
                except av.error.FFmpegError as exc:
                    raise VideoError(f"{source}: decoding failed after {frames_done} frames ({exc})") from None
                finally:
                    if pool is not None:
                        pool.shutdown(cancel_futures=True)
            sink.mux(encoder.encode(None))
            if audio_out is not None and not audio_copy:
                sink.mux(audio_out.encode(None))
        if frames_done == 0:
            raise VideoError(f"{source}: no frames decoded")
    return {"input": str(source), "output": str(output), "frames": frames_done, "fps": float(rate),
            "size": [width, height], "audio": None if audio is None else ("copied" if audio_copy else "aac"),
            "temporal": None if blender is None else {"cuts": blender.cuts}}


def _to_bytes(frames: np.ndarray) -> np.ndarray:
    """[0, 1] float frames as uint8."""
    return (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)
