"""The HTTP service, over real HTTP on a loopback port: results equal the Stylizer's,
concurrent requests are batched, every bad input gets the documented JSON error, and
the server keeps serving afterwards. Models: one tiny random network exported with
``export_onnx``, copied into three styles with different output biases."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

import styletrans.inference.registry as registry
from styletrans.cli import main
from styletrans.export import export_onnx
from styletrans.images import open_rgb
from styletrans.inference import Stylizer
from styletrans.models.transformer import TransformerConfig, TransformerNet
from styletrans.serving import ServeSettings
from styletrans.serving.app import create_app
from tests.conftest import make_photo
from tests.test_images import _png_declaring

STYLES = ("candy", "mosaic", "wave")
LAST_BIAS = "net.decoder.2.1.bias"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("serving")
    base = onnx.load(export_onnx(TransformerNet(TransformerConfig(base_channels=4, residual_blocks=1)),
                                 root / "base.onnx", metadata={"style_name": "base"}))
    models = root / "models"
    models.mkdir()
    for shift, style in enumerate(STYLES):  # same graph, different outputs: a cross-style mix-up would show
        model = onnx.ModelProto()
        model.CopyFrom(base)
        bias = next(init for init in model.graph.initializer if init.name == LAST_BIAS)
        bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias) + shift, LAST_BIAS))
        onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, "style_name": style})
        onnx.save(model, models / f"{style}.onnx")
    return models


class Server:
    """``create_app`` under uvicorn in a thread, on an ephemeral loopback port."""

    def __init__(self, settings: ServeSettings) -> None:
        import uvicorn

        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "server did not shut down"


@contextlib.contextmanager
def serve(models_dir: Path, **settings: object) -> Iterator[tuple[httpx.Client, Server]]:
    server = Server(ServeSettings(models_dir=models_dir, **{"reload_interval_s": 0, **settings}))
    with server as client:
        yield client, server


@pytest.fixture(scope="module")
def server(models_dir: Path) -> Iterator[tuple[httpx.Client, Server]]:
    with serve(models_dir, batch_timeout_ms=5, max_body_bytes=2 * 2**20, max_pixels=1_000_000, max_side=256) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: tuple[httpx.Client, Server]) -> httpx.Client:
    return server[0]


def jpeg(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    make_photo(width, height, seed).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def expected(models_dir: Path, style: str, data: bytes, **options: object) -> np.ndarray:
    return np.asarray(Stylizer(models_dir / f"{style}.onnx").stylize(open_rgb(data), **options), dtype=np.int16)


def decoded(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), dtype=np.int16)


def post(client: httpx.Client, style: str, data: bytes, params: dict | None = None,
         content_type: str = "image/jpeg", **kwargs: object) -> httpx.Response:
    return client.post(f"/v1/stylize/{style}", content=data, params=params,
                       headers={"Content-Type": content_type, **kwargs.pop("headers", {})}, **kwargs)


def metric(client: httpx.Client, name: str) -> dict[tuple, float]:
    """``{(sample name, sorted labels): value}`` of one metric family from /metrics."""
    families = text_string_to_metric_families(client.get("/metrics").text)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families if f.name == name for s in f.samples}


def assert_alive(client: httpx.Client) -> None:
    assert client.get("/health/live").json() == {"status": "alive"}
    assert client.get("/health/ready").status_code == 200


# ---------------------------------------------------------------------------- results


def test_stylize_returns_what_the_stylizer_computes(client: httpx.Client, models_dir: Path) -> None:
    data = jpeg()
    response = post(client, "wave", data)
    assert response.headers["content-type"] == "image/png" and response.headers["x-style"] == "wave"
    got = decoded(response)
    assert got.shape == (48, 64, 3)
    # uint8 rounding of float results from batch 1 on both sides: at most one level apart
    assert np.abs(got - expected(models_dir, "wave", data)).max() <= 1
    assert np.abs(got - expected(models_dir, "candy", data)).max() > 10  # a different style is different


def test_multipart_with_options(client: httpx.Client, models_dir: Path) -> None:
    data = jpeg(96, 64, seed=1)
    response = client.post("/v1/stylize/mosaic", files={"image": ("photo.jpg", data, "image/jpeg")},
                           data={"size": "48", "preserve_color": "true", "strength": "0.5"})
    got = decoded(response)
    assert got.shape == (32, 48, 3)
    want = np.asarray(Stylizer(models_dir / "mosaic.onnx").stylize(
        open_rgb(data).resize((48, 32), Image.Resampling.LANCZOS), preserve_color=True, strength=0.5), dtype=np.int16)
    assert np.abs(got - want).max() <= 1
    # options as one JSON field; output formats
    response = client.post("/v1/stylize/mosaic", files={"file": ("p.jpg", data, "image/jpeg")},
                           data={"options": '{"format": "webp", "size": 40}'})
    assert response.headers["content-type"] == "image/webp" and Image.open(io.BytesIO(response.content)).width == 40
    response = post(client, "mosaic", data, params={"format": "jpeg", "strength": 0})
    assert response.headers["content-type"] == "image/jpeg"
    assert np.abs(decoded(response) - np.asarray(open_rgb(data), dtype=np.int16)).mean() < 3  # strength 0: the photo


def test_inputs_above_max_side_are_scaled_down(client: httpx.Client) -> None:
    got = decoded(post(client, "wave", jpeg(400, 200), params={"format": "png"}))
    assert got.shape == (128, 256, 3)  # max_side=256 for this server


def test_styles_lists_the_models_with_their_metadata(client: httpx.Client) -> None:
    body = client.get("/v1/styles").json()
    assert [s["name"] for s in body["styles"]] == list(STYLES)
    assert {s["style_name"] for s in body["styles"]} == set(STYLES)
    assert body["styles"][0]["precision"] == "fp32" and body["errors"] == {}


# ---------------------------------------------------------------------------- batching


def test_concurrent_requests_are_batched_per_style_and_size(models_dir: Path) -> None:
    # Batches of 4 and a batch window far longer than the test: a batch runs only when it is
    # full, so 8 concurrent "wave" requests are exactly two batches and 4 "candy" ones one,
    # however slowly the requests arrive on a busy machine.
    inputs = [("wave", jpeg(64, 48, seed=i)) for i in range(8)] + [("candy", jpeg(48, 40, seed=i)) for i in range(4)]
    with serve(models_dir, max_batch_size=4, batch_timeout_ms=600_000, request_timeout_s=600) as (client, _):
        with ThreadPoolExecutor(len(inputs)) as pool:
            responses = list(pool.map(lambda job: post(client, *job), inputs))
        for (style, data), response in zip(inputs, responses, strict=True):
            assert np.abs(decoded(response) - expected(models_dir, style, data)).max() <= 1
        sizes = metric(client, "styletrans_batch_size")
    for style, count in (("wave", 2), ("candy", 1)):
        assert sizes[("styletrans_batch_size_sum", (("style", style),))] == 4 * count
        assert sizes[("styletrans_batch_size_count", (("style", style),))] == count
        assert sizes[("styletrans_batch_size_bucket", (("le", "2.0"), ("style", style)))] == 0  # all of 4


class BlockedNetwork:
    """Stands in for the server's network call: each call waits until ``release`` (or until
    ``parties`` calls are in flight together), so a test holds the server's slots for as
    long as it needs instead of guessing how long a sleep is enough."""

    def __init__(self, run_batch: object, parties: int = 1) -> None:
        self.run_batch = run_batch
        self.released = threading.Event()
        self.together = threading.Barrier(parties, timeout=60)
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0

    def __call__(self, key: object, images: list) -> list:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.together.parties > 1:
                self.together.wait()  # raises BrokenBarrierError (a 500) if they never overlap
            else:
                self.released.wait(timeout=60)
            return self.run_batch(key, images)  # type: ignore[operator]
        finally:
            with self.lock:
                self.in_flight -= 1


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Poll a condition of the server's state (not a guess at how long something takes)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_workers_run_batches_at_the_same_time(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``workers=2``: two batches (two image sizes) are in the network together; with one
    worker the second would wait for the first and the barrier would break."""
    with serve(models_dir, workers=2, batch_timeout_ms=0) as (client, running):
        batcher = running.app.state.service.batcher
        network = BlockedNetwork(batcher.run_batch, parties=2)
        monkeypatch.setattr(batcher, "run_batch", network)
        inputs = [("wave", jpeg(64, 48)), ("wave", jpeg(48, 40))]
        with ThreadPoolExecutor(2) as pool:
            responses = list(pool.map(lambda job: post(client, *job), inputs))
        for (style, data), response in zip(inputs, responses, strict=True):
            assert np.abs(decoded(response) - expected(models_dir, style, data)).max() <= 1
        assert network.most_in_flight == 2


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("style", ["nope", "..", "wave.onnx", "..%2F..%2Fetc%2Fpasswd", "%2e%2e", "wave%00", "WAVE"])
def test_unknown_styles_are_404_listing_the_available_ones(client: httpx.Client, style: str) -> None:
    response = client.post(f"/v1/stylize/{style}", content=jpeg(), headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 404
    body = response.json()
    assert body["error"] in ("unknown_style", "not_found")
    if body["error"] == "unknown_style":
        assert body["available"] == list(STYLES) and "wave" in body["message"]
        assert "train another with `styletrans train --config configs/recipes/cpu.yaml" in body["message"]


def _bad_inputs() -> dict[str, bytes]:
    """The image module's corpus of bad files, made here."""
    good = jpeg(40, 30)
    return {
        "truncated.jpg": good[: len(good) // 2],
        "text.png": b"this is not an image, just text with a .png name\n",
        "bomb.png": _png_declaring(100_000, 100_000),
        "big.png": _png_declaring(2000, 1000),  # 2 MP: over this server's 1 MP limit
    }


@pytest.mark.parametrize(("name", "status", "message"), [
    ("truncated.jpg", 400, "truncated"),
    ("text.png", 400, "not a readable image"),
    ("bomb.png", 413, "above the limit"),
    ("big.png", 413, "above the limit"),
])
def test_bad_images_get_json_errors_and_the_server_lives_on(client: httpx.Client, name: str, status: int,
                                                             message: str) -> None:
    response = post(client, "wave", _bad_inputs()[name], content_type="image/png")
    assert response.status_code == status
    assert message in response.json()["message"]
    assert_alive(client)


def test_empty_bodies_and_wrong_content_types(client: httpx.Client) -> None:
    response = post(client, "wave", b"")
    assert response.status_code == 400 and "empty" in response.json()["message"]
    response = client.post("/v1/stylize/wave", files={"image": ("empty.png", b"", "image/png")})
    assert response.status_code == 400 and "empty" in response.json()["message"]
    response = client.post("/v1/stylize/wave", data={"size": "64"})  # a form without a file
    assert response.status_code == 415  # x-www-form-urlencoded is not an image
    response = client.post("/v1/stylize/wave", files={"size": (None, "64")})  # multipart without a file part
    assert response.status_code == 400 and "no file part" in response.json()["message"]
    response = post(client, "wave", b'{"image": "..."}', content_type="application/json")
    assert response.status_code == 415 and "image/jpeg" in response.json()["accepted"]


@pytest.mark.parametrize("params", [{"strength": "2"}, {"format": "gif"}, {"size": "0"}, {"colour": "1"},
                                    {"size": "4096"}, {"preserve_color": "maybe"}])
def test_invalid_options_are_422(client: httpx.Client, params: dict) -> None:
    response = post(client, "wave", jpeg(), params=params)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_options"
    assert next(iter(params)) in response.json()["message"]


def test_oversize_bodies_are_413_declared_or_streamed(client: httpx.Client) -> None:
    big = b"\xff" * (2 * 2**20 + 1)
    response = post(client, "wave", big)
    assert response.status_code == 413 and response.json()["max_body_bytes"] == 2 * 2**20

    def chunks() -> Iterator[bytes]:  # no Content-Length: cut off while streaming
        for _ in range(40):
            yield b"\xff" * 2**16

    response = client.post("/v1/stylize/wave", content=chunks(), headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 413
    assert_alive(client)


def test_a_failing_network_call_is_a_500_not_a_dead_server(server: tuple[httpx.Client, Server],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    client, running = server

    def broken(key: object, images: list) -> list:
        raise RuntimeError("simulated fault")

    monkeypatch.setattr(running.app.state.service.batcher, "run_batch", broken)
    response = post(client, "wave", jpeg())
    assert response.status_code == 500 and response.json()["error"] == "internal_error"
    monkeypatch.undo()
    assert post(client, "wave", jpeg()).status_code == 200


def test_metrics_count_requests_by_status(client: httpx.Client) -> None:
    before = metric(client, "styletrans_requests")
    key = ("styletrans_requests_total", (("method", "POST"), ("route", "/v1/stylize/{style}"), ("status", "404")))
    post(client, "nope", jpeg())
    after = metric(client, "styletrans_requests")
    assert after[key] == before.get(key, 0) + 1
    assert ("styletrans_queue_depth", ()) in metric(client, "styletrans_queue_depth")
    assert any(name == "styletrans_request_seconds_count" for name, _ in metric(client, "styletrans_request_seconds"))


# ---------------------------------------------------------------------------- overload, timeout


def test_overload_is_503_with_retry_after_and_slow_requests_time_out(models_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # The network call is held until the test lets it go: two requests take the 2 slots and
    # stay there, so a third is refused (503) whenever it comes, and the two time out (504)
    # after 1 s whatever the machine's speed.
    with serve(models_dir, max_queue=2, batch_timeout_ms=0, request_timeout_s=1.0) as (client, running):
        service = running.app.state.service
        network = BlockedNetwork(service.batcher.run_batch)
        monkeypatch.setattr(service.batcher, "run_batch", network)
        try:
            with ThreadPoolExecutor(2) as pool:
                slow = [pool.submit(post, client, "wave", jpeg()) for _ in range(2)]
                wait_until(lambda: service.admission.active == 2, "two requests in progress")
                refused = post(client, "wave", jpeg())
                assert refused.status_code == 503 and refused.json()["error"] == "overloaded"
                assert int(refused.headers["retry-after"]) >= 1
                timed_out = [future.result() for future in slow]
        finally:
            network.released.set()
        assert [r.status_code for r in timed_out] == [504, 504]
        assert all(r.json()["error"] == "timeout" for r in timed_out)
        assert metric(client, "styletrans_requests_in_progress")[("styletrans_requests_in_progress", ())] == 0
        assert decoded(post(client, "wave", jpeg())).shape == (48, 64, 3)  # still serving


# ---------------------------------------------------------------------------- auth, reload


def test_api_key_admin_token_and_reload(models_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(models_dir / "wave.onnx", folder / "wave.onnx")
    server = Server(ServeSettings(models_dir=folder, api_key="s3cret", admin_token="adm1n", reload_interval_s=0.1))
    with server as client:
        key = {"Authorization": "Bearer s3cret"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            response = post(client, "wave", jpeg(), headers=headers)
            assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
            assert client.get("/v1/styles", headers=headers).status_code == 401
        assert post(client, "wave", jpeg(), headers=key).status_code == 200
        assert client.get("/health/ready").status_code == 200 and client.get("/metrics").status_code == 200

        # the folder is watched: new, broken and removed files
        shutil.copy(models_dir / "candy.onnx", folder / ".candy.onnx.tmp.onnx")  # hidden: an export in progress
        (folder / ".candy.onnx.tmp.onnx").rename(folder / "candy.onnx")
        (folder / "broken.onnx").write_bytes(b"not a model")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            body = client.get("/v1/styles", headers=key).json()
            if [s["name"] for s in body["styles"]] == ["candy", "wave"] and "broken" in body["errors"]:
                break
            time.sleep(0.05)
        assert [s["name"] for s in body["styles"]] == ["candy", "wave"]
        assert "not a valid ONNX model" in body["errors"]["broken"] and str(folder) not in body["errors"]["broken"]
        assert post(client, "candy", jpeg(), headers=key).status_code == 200

        (folder / "wave.onnx").unlink()
        assert client.post("/v1/admin/reload", headers=key).status_code == 401  # the API key is not the admin token
        response = client.post("/v1/admin/reload", headers={"Authorization": "Bearer adm1n"})
        assert response.status_code == 200 and response.json()["styles"] == ["candy"]
        assert post(client, "wave", jpeg(), headers=key).json()["available"] == ["candy"]


def test_a_model_replaced_in_place_is_served_after_the_reload(models_dir: Path, tmp_path: Path) -> None:
    """Same file name, new weights: the watcher notices the rewrite and later requests get
    the new network's output (the old one is not kept in a cache)."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(models_dir / "wave.onnx", folder / "wave.onnx")
    data = jpeg()
    with serve(folder, reload_interval_s=0.05) as (client, _):
        assert np.abs(decoded(post(client, "wave", data)) - expected(models_dir, "wave", data)).max() <= 1
        before = metric(client, "styletrans_model_reloads")
        replacement = folder / ".wave.onnx.tmp"
        shutil.copy(models_dir / "candy.onnx", replacement)  # same graph and size, other biases
        stamp = (folder / "wave.onnx").stat().st_mtime_ns + 10**9  # a coarse clock could repeat the old time
        os.utime(replacement, ns=(stamp, stamp))
        replacement.replace(folder / "wave.onnx")
        wait_until(lambda: metric(client, "styletrans_model_reloads") != before, "the reload")
        got = decoded(post(client, "wave", data))
    assert np.abs(got - expected(models_dir, "candy", data)).max() <= 1


def test_api_key_and_admin_token_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from styletrans.cli import build_parser
    from styletrans.commands.serve import settings_from_args

    monkeypatch.setenv("STYLETRANS_API_KEY", "from-env")
    monkeypatch.setenv("STYLETRANS_ADMIN_TOKEN", "admin-env")
    settings = settings_from_args(build_parser().parse_args(["serve", "--models-dir", str(tmp_path)]))
    assert (settings.api_key, settings.admin_token) == ("from-env", "admin-env")
    flags = ["serve", "--models-dir", str(tmp_path), "--api-key", "flag", "--admin-token", "flag-admin"]
    settings = settings_from_args(build_parser().parse_args(flags))
    assert (settings.api_key, settings.admin_token) == ("flag", "flag-admin")  # a flag wins
    assert "from-env" not in repr(settings) and "flag" not in repr(settings)  # secrets stay out of logs
    monkeypatch.setenv("STYLETRANS_API_KEY", "")
    monkeypatch.delenv("STYLETRANS_ADMIN_TOKEN")
    settings = settings_from_args(build_parser().parse_args(["serve", "--models-dir", str(tmp_path)]))
    assert (settings.api_key, settings.admin_token) == (None, None)  # empty is unset, not a key ""


def test_reload_over_http_is_off_without_an_admin_token(client: httpx.Client) -> None:
    response = client.post("/v1/admin/reload")
    assert response.status_code == 403 and "--admin-token" in response.json()["message"]


# ---------------------------------------------------------------------------- command line


def test_serve_defaults_to_the_bundled_models(models_dir: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from styletrans.cli import build_parser
    from styletrans.commands.serve import settings_from_args

    monkeypatch.setattr(registry, "bundled_models_dir", lambda: models_dir)
    assert settings_from_args(build_parser().parse_args(["serve"])).models_dir == models_dir
    explicit = build_parser().parse_args(["serve", "--models-dir", str(tmp_path)])
    assert settings_from_args(explicit).models_dir == tmp_path


def test_with_bundled_adds_the_bundled_styles_after_the_folder(models_dir: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from styletrans.cli import build_parser
    from styletrans.commands.serve import settings_from_args

    def dirs(*flags: str) -> tuple[Path, ...]:
        return settings_from_args(build_parser().parse_args(["serve", *flags])).models_dirs

    monkeypatch.setattr(registry, "bundled_models_dir", lambda: models_dir)
    assert dirs("--models-dir", str(tmp_path), "--with-bundled") == (tmp_path, models_dir)
    assert dirs("--models-dir", str(tmp_path)) == (tmp_path,)  # without the flag, only the folder asked for
    assert dirs("--with-bundled") == dirs() == (models_dir,)  # the bundled folder once


def test_a_users_model_hides_the_bundled_one_of_its_name_while_it_is_there(models_dir: Path, tmp_path: Path) -> None:
    """The Docker image's default: an empty (or absent-then-mounted) folder before the bundled styles."""
    mine = tmp_path / "mine"
    mine.mkdir()
    data = jpeg()
    with serve(mine, extra_models_dirs=(models_dir,), reload_interval_s=0.05) as (client, server):
        store = server.app.state.service.store
        assert client.get("/health/ready").json() == {"status": "ready", "styles": len(STYLES)}  # empty: bundled only
        assert store.hidden == {}
        shutil.copy(models_dir / "candy.onnx", mine / ".wave.tmp")  # other weights, under a bundled name
        (mine / ".wave.tmp").rename(mine / "wave.onnx")
        wait_until(lambda: store.models["wave"].path == mine / "wave.onnx", "the user's wave")
        assert store.hidden == {"wave": (mine / "wave.onnx", [models_dir / "wave.onnx"])}
        assert np.abs(decoded(post(client, "wave", data)) - expected(models_dir, "candy", data)).max() <= 1
        assert sorted(store.models) == sorted(STYLES)  # the others still come from the bundled folder
        (mine / "wave.onnx").unlink()
        wait_until(lambda: store.models["wave"].path == models_dir / "wave.onnx", "the bundled wave again")
        assert np.abs(decoded(post(client, "wave", data)) - expected(models_dir, "wave", data)).max() <= 1
        assert store.hidden == {}


def test_serve_command_refuses_a_folder_without_models(models_dir: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    train = "`styletrans train --config configs/recipes/cpu.yaml --config configs/STYLE.yaml --data PHOTOS`"
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: tmp_path / "bundled")
    assert main(["serve"]) == 2  # nothing bundled yet
    err = capsys.readouterr().err
    assert "bundled: no such folder; no bundled models; train one with " + train in err and "--models-dir" in err
    monkeypatch.setattr(registry, "bundled_models_dir", lambda: models_dir)
    assert main(["serve", "--models-dir", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "no such folder; bundled models: candy, mosaic, wave; train another with " + train in err
    assert "leave out --models-dir" in err
    (tmp_path / "bad.onnx").write_bytes(b"junk")
    assert main(["serve", "--models-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no usable .onnx model" in err and "bad" in err and "bundled models: candy, mosaic, wave" in err


def test_kubernetes_manifest_matches_the_server(tmp_path: Path) -> None:
    import yaml

    from styletrans.cli import build_parser

    manifest = Path(__file__).resolve().parents[1] / "serve" / "k8s" / "styletrans-serve.yaml"
    deployment = next(d for d in yaml.safe_load_all(manifest.read_text()) if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = build_parser().parse_args(container["args"][1:])  # the flags exist and parse
    assert args.command == "serve" and args.host == "0.0.0.0"
    routes = {route.path for route in create_app(ServeSettings(models_dir=tmp_path)).routes}
    assert {container["livenessProbe"]["httpGet"]["path"], container["readinessProbe"]["httpGet"]["path"],
            deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"]} <= routes
