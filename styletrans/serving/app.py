"""The HTTP service: routes, start-up (load every model) and shut-down.

    app = create_app(ServeSettings(models_dir=Path("models")))
    uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, NamedTuple

from fastapi import FastAPI, Query, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from torch import Tensor

from styletrans.images import ImageError, ImageTooLargeError
from styletrans.inference import ModelError, Stylizer
from styletrans.inference.mixing import MixError
from styletrans.inference.registry import TRAIN_HINT, missing_model_hint
from styletrans.serving.auth import require_token
from styletrans.serving.batching import Batcher
from styletrans.serving.errors import InternalErrorMiddleware, ServeError, install_error_handlers
from styletrans.serving.limits import ACCEPTED_TYPES, Admission, BodySizeLimitMiddleware, Overloaded, media_type
from styletrans.serving.metrics import Metrics, RequestMetricsMiddleware
from styletrans.serving.mixes import MixStore
from styletrans.serving.models import ModelStore, ServedModel
from styletrans.serving.pipeline import MixOptions, StylizeOptions, decode, finish_and_encode, run_batch
from styletrans.serving.settings import ServeSettings

log = logging.getLogger("styletrans.serving")

# Admit a request only while the queued work is below this share of the request timeout:
# the rest covers its own decode, network call and encode, and the estimate's error (batch
# times vary by 2x on a shared CPU; at 0.75, 2 of 500 requests still timed out under load).
ADMIT_BACKLOG = 0.5


class BatchKey(NamedTuple):
    """Requests batch together only for the same loaded model and the same image size:
    padding to a common size would change the picture (instance normalization sees the
    padding), so a "size bucket" is one exact size."""

    model: ServedModel
    height: int
    width: int


class Service:
    """What the routes share: the settings, the models, the batcher, the metrics."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.store = ModelStore(settings.models_dirs, self.load_model, settings.precision)
        self.mixes = MixStore(settings.models_dirs, self.store, self.load_model)
        self.metrics = Metrics(settings.max_batch_size)
        self.batcher = Batcher(self._run_batch, max_batch_size=settings.max_batch_size,
                               batch_timeout_s=settings.batch_timeout_ms / 1000, workers=settings.workers,
                               on_batch=lambda key, n, s: self.metrics.observe_batch(key.model.name, n, s),
                               batch_limit=self.batch_limit)
        self.admission = Admission(settings.max_queue)
        self.ready = False
        self.metrics.queue_depth.set_function(lambda: self.batcher.queued)
        self.metrics.in_progress.set_function(lambda: self.admission.active)
        self.metrics.models.set_function(lambda: len(self.store.models))

    def load_model(self, path: Path | bytes) -> Stylizer:
        return Stylizer(path, backend="onnx", provider=self.settings.provider, threads=self.settings.ort_threads,
                        memory=self.settings.memory)

    def batch_limit(self, key: BatchKey) -> int:
        """Images of this size per network call within ``max_batch_pixels`` (one at least)."""
        return max(1, self.settings.max_batch_pixels // (key.height * key.width))

    @staticmethod
    def _run_batch(key: BatchKey, images: list[Tensor]) -> list[Tensor]:
        return run_batch(key.model.stylizer, images)

    def backlog_seconds(self) -> float:
        """How long the requests in progress will take, at the recent speed of the network."""
        return self.admission.active * self.batcher.seconds_per_item / self.settings.workers

    def retry_after(self) -> int:
        return max(1, math.ceil(self.backlog_seconds()))

    def admit(self) -> contextlib.AbstractContextManager[None]:
        """A slot for one request, or ``Overloaded`` when the slots are taken or when the work
        already queued would outlast the request timeout: refusing now (503) beats a 504 later."""
        backlog, timeout = self.backlog_seconds(), self.settings.request_timeout_s
        if backlog > ADMIT_BACKLOG * timeout:
            raise Overloaded(f"about {backlog:.0f} s of work queued (request timeout {timeout:g} s)")
        return self.admission.slot()

    async def reload(self) -> dict[str, Any]:
        report = await run_in_threadpool(self.store.reload)
        if report.changed:
            self.metrics.reloads.inc()
        return {"loaded": report.loaded, "removed": report.removed, "failed": report.failed,
                "styles": sorted(self.store.models)}

    async def watch_models(self) -> None:
        """Poll the folder (one ``stat`` per file): works on every file system, including
        network mounts and Kubernetes volumes, where change notifications are unreliable."""
        while True:
            await asyncio.sleep(self.settings.reload_interval_s)
            try:
                if self.store.signature() != self.store.loaded_signature():
                    await self.reload()
            except Exception:  # a vanished folder or a bad file must not stop the watcher
                log.exception("model reload failed")

    async def stylize(self, model: ServedModel, data: bytes, options: StylizeOptions) -> bytes:
        s = self.settings
        try:
            content = await run_in_threadpool(decode, data, options, max_pixels=s.max_pixels, max_side=s.max_side)
        except ImageTooLargeError as exc:
            raise ServeError(413, str(exc), max_pixels=s.max_pixels) from None
        except ImageError as exc:
            raise ServeError(400, str(exc), code="bad_image") from None
        if options.strength == 0.0:
            stylized = content  # the photo itself: no need to queue for the network
        else:
            stylized = await self.batcher.submit(BatchKey(model, *content.shape[-2:]), content)
        return await run_in_threadpool(finish_and_encode, stylized, content, options)


async def read_image(request: Request, options: StylizeOptions) -> tuple[bytes, StylizeOptions]:
    """The image bytes (raw body, or the file part of a multipart form) and the options,
    form fields (or a JSON ``options`` field) overriding the query string."""
    if media_type(request.headers.get("content-type")) != "multipart/form-data":
        return await request.body(), options
    try:
        form = await request.form(max_files=1, max_fields=16)
    except MultiPartException as exc:
        raise ServeError(400, f"malformed multipart body: {exc.message}") from None
    try:
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            raise ServeError(400, "the multipart body has no file part: send the image as e.g. -F image=@photo.jpg")
        data = await files[0].read()
        fields: dict[str, Any] = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    finally:
        await form.close()
    if "options" in fields:
        try:
            extra = json.loads(fields.pop("options"))
        except ValueError as exc:
            raise ServeError(422, f"options: not valid JSON ({exc})") from None
        if not isinstance(extra, dict):
            raise ServeError(422, "options: expected a JSON object such as {\"size\": 512}")
        fields = {**extra, **fields}
    try:
        return data, type(options).model_validate({**options.model_dump(exclude_unset=True), **fields})
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ServeError(422, "; ".join(problems)) from None


def check_content_type(request: Request) -> None:
    if media_type(request.headers.get("content-type")) not in ACCEPTED_TYPES:
        raise ServeError(415, f"content type {media_type(request.headers.get('content-type'))!r} not accepted; "
                         f"send one of {', '.join(ACCEPTED_TYPES)} (with curl: -H 'Content-Type: image/jpeg' "
                         "--data-binary @photo.jpg, or -F image=@photo.jpg)", accepted=list(ACCEPTED_TYPES))


def create_app(settings: ServeSettings, service: Service | None = None) -> FastAPI:
    """The ASGI app; ``service`` may be passed pre-loaded (the CLI loads models before binding the port)."""
    service = service or Service(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.reload()  # a no-op for files already loaded
        if not service.store.models:
            where = ", ".join(map(str, settings.models_dirs))
            raise ModelError(f"no usable .onnx model in {where}: {service.store.errors or 'none found'}; "
                             f"{missing_model_hint()}")
        await service.batcher.start()
        watcher = asyncio.create_task(service.watch_models()) if settings.reload_interval_s > 0 else None
        service.ready = True
        try:
            yield
        finally:
            service.ready = False
            if watcher is not None:
                watcher.cancel()
            await service.batcher.stop()

    app = FastAPI(title="styletrans", summary="Fast neural style transfer over HTTP", lifespan=lifespan)
    app.state.service = service
    install_error_handlers(app)
    # The last added is the outermost: bugs become 500 JSON, everything is counted, then the body limit.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware, metrics=service.metrics)
    app.add_middleware(InternalErrorMiddleware)

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/health/ready", tags=["health"])
    async def ready() -> dict[str, Any]:
        if not (service.ready and service.store.models):
            raise ServeError(503, "not ready: models are loading or none is usable", code="not_ready")
        return {"status": "ready", "styles": len(service.store.models)}

    @app.get("/metrics", tags=["health"])
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=service.metrics.content_type)

    @app.get("/v1/styles", tags=["styles"])
    async def styles(request: Request) -> dict[str, Any]:
        require_token(request, settings.api_key)
        models = service.store.models
        return {"styles": [models[name].describe() for name in sorted(models)], "errors": service.store.errors,
                "mixes": await run_in_threadpool(service.mixes.describe)}

    image_responses = {200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}},
                             "description": "the stylized image"}}

    # Before /v1/stylize/{style}, which it would otherwise be: a style named "mix" is not served by name.
    @app.post("/v1/stylize/mix", tags=["styles"], response_class=Response, responses=image_responses)
    async def stylize_mix(request: Request, options: Annotated[MixOptions, Query()]) -> Response:
        """Stylize with a mix of styles of one multi-style base (``?styles=a:0.7,b:0.3``), made by the first
        mixing model (``BASE.mix.onnx``) in the served folders that holds them all."""
        require_token(request, settings.api_key)
        check_content_type(request)  # before a session is built for the mix
        try:
            model = await run_in_threadpool(service.mixes.get, options.styles)
        except MixError as exc:
            raise ServeError(404 if exc.unknown else 400, str(exc), code="unknown_style" if exc.unknown
                             else "bad_mix") from None
        except ModelError as exc:  # a mixing model that cannot load here
            raise ServeError(503, f"the mixing model cannot run: {exc}", code="mix_unavailable") from None
        base = model.stylizer.metadata["base"]["name"]
        return await respond(model, request, options, {"X-Style": model.stylizer.style_name, "X-Style-Base": base})

    @app.post("/v1/stylize/{style}", tags=["styles"], response_class=Response, responses=image_responses)
    async def stylize(style: str, request: Request, options: Annotated[StylizeOptions, Query()]) -> Response:
        """Stylize the image in the body (raw bytes with an image Content-Type, or a multipart form)."""
        require_token(request, settings.api_key)
        model = service.store.get(style)
        if model is None:
            available = sorted(service.store.models)
            # The served folder's styles only (by default the bundled ones): others cannot be requested here.
            raise ServeError(404, f"unknown style {style[:100]!r}; available: {', '.join(available) or 'none'}; "
                             f"train another with {TRAIN_HINT}", code="unknown_style", available=available)
        return await respond(model, request, options, {"X-Style": model.name})

    async def respond(model: ServedModel, request: Request, options: StylizeOptions,
                      headers: dict[str, str]) -> Response:
        """The image work of a stylize request: admission, decode, the batched network call, encode."""
        check_content_type(request)
        try:
            with service.admit():
                data, options = await read_image(request, options)
                if not data:
                    raise ServeError(400, "empty image (0 bytes): send the image bytes or a multipart file part",
                                     code="bad_image")
                if options.size is not None and options.size > settings.max_side:
                    raise ServeError(422, f"size: at most {settings.max_side} (the server's max_side)")
                body = await asyncio.wait_for(service.stylize(model, data, options), settings.request_timeout_s)
        except Overloaded as exc:
            raise ServeError(503, f"server busy: {exc}; retry later",
                             headers={"Retry-After": str(service.retry_after())}) from None
        except TimeoutError:
            raise ServeError(504, f"not finished within the request timeout of {settings.request_timeout_s:g} s",
                             code="timeout") from None
        return Response(body, media_type=options.media_type, headers=headers)

    @app.post("/v1/admin/reload", tags=["admin"])
    async def reload(request: Request) -> dict[str, Any]:
        """Re-read the models folder now (new, changed and removed files)."""
        if settings.admin_token is None:
            raise ServeError(403, "model reload over HTTP is disabled: start the server with --admin-token "
                             "(or STYLETRANS_ADMIN_TOKEN)")
        require_token(request, settings.admin_token, what="admin token")
        return await service.reload()

    return app
