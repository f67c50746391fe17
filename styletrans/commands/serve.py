"""``styletrans serve``: an HTTP service for every ONNX model in a folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from styletrans.serving.settings import ADMIN_TOKEN_ENV, API_KEY_ENV, ServeSettings

DEFAULTS = ServeSettings(models_dir=Path("models"))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve", help="serve the ONNX models of a folder over HTTP (batching, limits, metrics)",
        description="Serve every .onnx model in --models-dir (default: the styles bundled with styletrans) "
        "by style name (the file name without .onnx): POST /v1/stylize/STYLE, GET /v1/styles, /health/live, "
        "/health/ready, /metrics. Concurrent requests for the same style and image size run as one batch. Files added, "
        "replaced or removed in the folder are picked up while serving. See serve/README.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--models-dir", type=Path, default=None,
                   help="folder of exported .onnx models; without it, the styles bundled with styletrans")
    p.add_argument("--with-bundled", action="store_true",
                   help="serve the bundled styles too, after --models-dir's: a model in --models-dir wins a name "
                   "(a note says so); the folder may be empty (the Docker image's default)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=DEFAULTS.workers,
                   help="batches computed at the same time (threads sharing one session per model)")
    p.add_argument("--threads", type=int, default=None,
                   help="ONNX Runtime threads per batch (default: CPU cores / workers)")
    p.add_argument("--max-batch-size", type=int, default=DEFAULTS.max_batch_size,
                   help="requests per network call (1: no batching)")
    p.add_argument("--batch-timeout-ms", type=float, default=DEFAULTS.batch_timeout_ms,
                   help="how long a request may wait for others to batch with")
    p.add_argument("--provider", choices=("auto", "cuda", "tensorrt", "cpu"), default=DEFAULTS.provider,
                   help="ONNX Runtime execution provider (auto: CUDA if usable, else CPU)")
    p.add_argument("--precision", choices=("auto", "int8", "float"), default=DEFAULTS.precision,
                   help="auto: serve STYLE.int8.onnx instead of STYLE.onnx where both exist; int8: only int8 "
                   "files; float: ignore int8 files")
    p.add_argument("--max-batch-pixels", type=int, default=DEFAULTS.max_batch_pixels,
                   help="most pixels in one network call (at least one image): bounds peak memory")
    p.add_argument("--memory", choices=("no-arena", "arena", "shrink"), default=DEFAULTS.memory,
                   help="ONNX Runtime working memory: no-arena gives a large image's memory back after the call; "
                   "arena keeps the largest call's (ORT's default); shrink shrinks the arena after every call")
    p.add_argument("--max-queue", type=int, default=DEFAULTS.max_queue,
                   help="stylize requests in progress at once; more are answered 503 with Retry-After")
    p.add_argument("--request-timeout", type=float, default=DEFAULTS.request_timeout_s,
                   help="seconds a request may take once received (504 after)")
    p.add_argument("--max-body-mb", type=float, default=DEFAULTS.max_body_bytes / 2**20,
                   help="largest request body in MiB (413 above)")
    p.add_argument("--max-pixels", type=int, default=DEFAULTS.max_pixels,
                   help="largest input image in pixels, checked before decoding (413 above)")
    p.add_argument("--max-side", type=int, default=DEFAULTS.max_side,
                   help="longest side the network runs at; larger inputs are scaled down")
    p.add_argument("--reload-interval", type=float, default=DEFAULTS.reload_interval_s,
                   help="seconds between checks of the models folder for changes (0: never)")
    p.add_argument("--api-key", default=None,
                   help=f"require 'Authorization: Bearer KEY' on /v1/* (or set {API_KEY_ENV}, which keeps the key "
                   "out of the process list)")
    p.add_argument("--admin-token", default=None,
                   help=f"enable POST /v1/admin/reload with this bearer token (or set {ADMIN_TOKEN_ENV})")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    p.set_defaults(handler=run)


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    from styletrans.inference.registry import bundled_models_dir  # imports torch: not for every `--help`

    bundled = bundled_models_dir()
    models_dir = args.models_dir or bundled
    extra = (bundled,) if args.with_bundled and models_dir.resolve() != bundled.resolve() else ()
    return ServeSettings(
        models_dir=models_dir, extra_models_dirs=extra, provider=args.provider, precision=args.precision,
        workers=args.workers,
        threads=args.threads, max_batch_size=args.max_batch_size, batch_timeout_ms=args.batch_timeout_ms,
        max_queue=args.max_queue, request_timeout_s=args.request_timeout, max_body_bytes=int(args.max_body_mb * 2**20),
        max_pixels=args.max_pixels, max_side=args.max_side,
        max_batch_pixels=args.max_batch_pixels, memory=args.memory, reload_interval_s=args.reload_interval,
        api_key=args.api_key, admin_token=args.admin_token,
    ).with_secrets_from_env()


def what_to_serve(models_dir: Path) -> str:
    """The bundled models, how to train another, and the flag that serves the other folder."""
    from styletrans.inference.registry import bundled_models_dir, list_models, missing_model_hint

    bundled = bundled_models_dir()
    if models_dir.resolve() != bundled.resolve() and list_models([bundled]):
        return f"{missing_model_hint()}; or leave out --models-dir to serve the bundled ones"
    return f"{missing_model_hint()}; or pass --models-dir with a folder of exported .onnx models"


def run(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from styletrans.cli import CommandError
    from styletrans.serving.app import Service, create_app

    settings = settings_from_args(args)
    if not settings.models_dir.is_dir():
        raise CommandError(f"{settings.models_dir}: no such folder; {what_to_serve(settings.models_dir)}")
    # Load before binding the port: a folder without a usable model is a clear error, not a failed start-up.
    service = Service(settings)
    report = service.store.reload()
    if not service.store.models:
        problems = "".join(f"\n  {name}: {why}" for name, why in report.failed.items())
        where = ", ".join(map(str, settings.models_dirs))
        raise CommandError(f"no usable .onnx model in {where}; {what_to_serve(settings.models_dir)}{problems}")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name, model in sorted(service.store.models.items()):
        print(f"style {name}: {model.stylizer.describe()}")
    for name, (served, hidden) in sorted(service.store.hidden.items()):
        print(f"note: style {name!r}: serving {served}, which hides {', '.join(map(str, hidden))}", file=sys.stderr)
    auth = "bearer token required" if settings.api_key else "no auth"
    print(f"serving {len(service.store.models)} styles on http://{args.host}:{args.port} ({auth}); "
          f"batches of up to {settings.max_batch_size}, {settings.workers} worker(s)")
    uvicorn.run(create_app(settings, service), host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=10)
    return 0
