"""Every knob of the HTTP service, with its default, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

API_KEY_ENV = "STYLETRANS_API_KEY"
ADMIN_TOKEN_ENV = "STYLETRANS_ADMIN_TOKEN"


@dataclass(frozen=True)
class ServeSettings:
    """What ``styletrans serve`` runs with. Defaults are the documented limits."""

    models_dir: Path
    # Served after ``models_dir``, which wins a name (``serve --with-bundled`` adds the bundled styles here).
    extra_models_dirs: tuple[Path, ...] = ()
    provider: str = "auto"  # ONNX Runtime execution provider: auto, cpu, cuda, tensorrt
    precision: str = "auto"  # auto: STYLE.int8.onnx where present, int8: only those, float: never
    workers: int = 1  # batches run at the same time (threads sharing the sessions)
    threads: int | None = None  # ONNX Runtime threads per batch (default: cores // workers)
    max_batch_size: int = 8
    batch_timeout_ms: float = 10.0  # how long the oldest request waits for companions
    max_queue: int = 64  # stylize requests in progress at once; beyond it: 503 + Retry-After
    request_timeout_s: float = 30.0  # whole request, decode to encode; beyond it: 504
    max_body_bytes: int = 20 * 1024 * 1024  # 20 MiB; beyond it: 413
    max_pixels: int = 40_000_000  # decoded input (a 48 MP phone photo is 8000x6000); beyond: 413
    max_side: int = 2048  # longest side the network runs at: larger inputs are scaled down
    # Pixels in one network call (one image at least): bounds peak memory, which grows with the
    # batch's pixels, not its count (benchmarks/serve_memory.py; figures in serve/README.md).
    max_batch_pixels: int = 2048 * 2048
    # ONNX Runtime's working memory: no-arena returns a large call's memory to the OS afterwards.
    memory: str = "no-arena"
    reload_interval_s: float = 2.0  # poll the models dir this often (0: only POST /v1/admin/reload)
    api_key: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        checks = {
            "workers": self.workers >= 1, "max_batch_size": self.max_batch_size >= 1,
            "batch_timeout_ms": self.batch_timeout_ms >= 0, "max_queue": self.max_queue >= 1,
            "request_timeout_s": self.request_timeout_s > 0, "max_body_bytes": self.max_body_bytes > 0,
            "max_pixels": self.max_pixels > 0, "max_side": self.max_side >= 8,
            "reload_interval_s": self.reload_interval_s >= 0,
            "precision": self.precision in ("auto", "int8", "float"),
            "max_batch_pixels": self.max_batch_pixels >= 1,
            "memory": self.memory in ("arena", "shrink", "no-arena"),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid serve settings: {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}")

    @property
    def models_dirs(self) -> tuple[Path, ...]:
        """Every served folder, the one that wins a name first."""
        return (self.models_dir, *self.extra_models_dirs)

    @property
    def ort_threads(self) -> int:
        """Split the cores between concurrent batches so they do not oversubscribe the CPU."""
        return self.threads or max(1, (os.cpu_count() or 1) // self.workers)

    def with_secrets_from_env(self) -> ServeSettings:
        """Fill an unset API key / admin token from ``STYLETRANS_API_KEY`` / ``STYLETRANS_ADMIN_TOKEN``."""
        from dataclasses import replace

        return replace(self, api_key=self.api_key or os.environ.get(API_KEY_ENV) or None,
                       admin_token=self.admin_token or os.environ.get(ADMIN_TOKEN_ENV) or None)
