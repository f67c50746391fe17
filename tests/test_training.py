"""Training with Lightning: data, checkpoint contract, a short run whose loss falls, and
an exact resume after SIGKILL. Tiny photos, a tiny network and the ``random`` loss network
truncated at relu2_2 keep the whole file fast."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from PIL import Image

from styletrans.assets import resolve_image
from styletrans.cli import main as styletrans_main
from styletrans.training.callbacks import StepProgressBar
from styletrans.training.cli import default_precision, expand_data_shorthand, main
from styletrans.training.data import ContentImages, StreamSampler, TrainCrops
from styletrans.training.module import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, StyleTransferModule
from tests.conftest import make_photo

CONFIGS = Path(__file__).parents[1] / "configs"
CONTRACT_KEYS = {"style_name", "style_image", "transformer", "loss_network", "content_layers", "style_layers",
                 "content_weight", "style_weight", "tv_weight", "image_size", "style_size"}
TINY_MODEL = {"loss_network": "random", "transformer": {"base_channels": 8, "residual_blocks": 1},
              "content_layers": {"relu2_2": 1.0}, "style_layers": {"relu1_2": 1.0, "relu2_2": 1.0}}


def train_args(photos: Path, style: Path, run_dir: Path, max_steps: int, *extra: str) -> list[str]:
    """A complete, fast run: 32 px, batch 2, validation + checkpoint every 10 steps."""
    return [
        "--data", str(photos), "--data.image_size", "32", "--data.batch_size", "2", "--data.num_workers", "0",
        "--data.val_fraction", "0.25",
        "--model.style_image", str(style), "--model.style_size", "32", "--model.loss_network", "random",
        "--model.transformer", "{base_channels: 8, residual_blocks: 1}", "--model.style_weight", "1e4",
        "--model.tv_weight", "100",
        "--model.content_layers", "{relu2_2: 1.0}", "--model.style_layers", "{relu1_2: 1.0, relu2_2: 1.0}",
        "--trainer.max_steps", str(max_steps), "--trainer.val_check_interval", "10",
        "--trainer.log_every_n_steps", "1", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--trainer.num_sanity_val_steps", "0",
        "--trainer.logger", "CSVLogger", "--samples.every_n_steps", "10", "--samples.num_images", "2",
        "--samples.size", "40", "--run_dir", str(run_dir), *extra,
    ]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    for i in range(7):
        make_photo(40 + 8 * i, 48, seed=i).save(root / f"p{i}.{'png' if i % 2 else 'jpg'}")
    make_photo(48, 40, seed=9).convert("L").save(root / "sub" / "grey.jpg")
    return root


@pytest.fixture(scope="module")
def style(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("style") / "stripes.png"
    make_photo(48, 48, seed=42).save(path)
    return path


@pytest.fixture(scope="module")
def finished_run(photos: Path, style: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """One uninterrupted 30-step run, shared by the tests that inspect its outputs."""
    run_dir = tmp_path_factory.mktemp("runs") / "reference"
    cli = main(train_args(photos, style, run_dir, 30))
    return run_dir, cli


def read_metrics(run_dir: Path) -> dict[int, dict[str, float]]:
    """``{step: {metric: value}}`` from the CSV logger."""
    out: dict[int, dict[str, float]] = {}
    with open(run_dir / "metrics.csv", newline="") as f:
        for row in csv.DictReader(f):
            values = {k: float(v) for k, v in row.items() if v not in ("", None) and k != "step"}
            out.setdefault(int(row["step"]), {}).update(values)
    return out


# -- data ---------------------------------------------------------------------------------------


def test_data_reads_nested_and_greyscale_photos_as_square_rgb_crops(photos: Path) -> None:
    data = ContentImages(str(photos), image_size=24, batch_size=3, num_workers=0, val_fraction=0.25)
    data.setup("fit")
    assert len(data.train_files) + len(data.val_files) == 8 and len(data.val_files) == 2
    assert not set(data.train_files) & set(data.val_files)
    assert photos / "sub" / "grey.jpg" in data.train_files + data.val_files
    batch = next(iter(data.train_dataloader()))
    assert batch.shape == (3, 3, 24, 24) and batch.min() >= 0 and batch.max() <= 1
    assert next(iter(data.val_dataloader())).shape == (2, 3, 24, 24)


def test_training_stream_depends_only_on_seed_and_position(photos: Path) -> None:
    crops = TrainCrops(sorted(photos.rglob("*.*")), image_size=16, seed=3)
    stream = [crops[i] for i in range(20)]  # crosses an epoch boundary (8 files)
    assert torch.equal(TrainCrops(crops.files, 16, seed=3)[13], stream[13])  # fresh object, same sample
    assert not torch.equal(TrainCrops(crops.files, 16, seed=4)[13], stream[13])
    assert not torch.equal(stream[0], stream[8])  # the next epoch is reshuffled and re-cropped
    # Resuming at sample 6 continues the stream; two DDP ranks read disjoint, interleaved shares.
    assert next(iter(StreamSampler(start=6))) == 6
    rank0, rank1 = iter(StreamSampler(6, 0, 2)), iter(StreamSampler(6, 1, 2))
    assert [next(rank0) for _ in range(3)] + [next(rank1) for _ in range(3)] == [6, 8, 10, 7, 9, 11]


def test_unreadable_files_are_skipped_and_counted(photos: Path, tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    root.mkdir()
    for p in photos.glob("*.jpg"):
        (root / p.name).write_bytes(p.read_bytes())
    (root / "notes.jpg").write_text("not an image")
    (root / "empty.png").write_bytes(b"")
    data = ContentImages(str(root), image_size=16, num_workers=0)
    with pytest.warns(UserWarning, match=r"skipping 2 of 6 files"):
        data.setup("fit")
    assert len(data.train_files) + len(data.val_files) == 4


def test_a_file_that_breaks_after_its_header_is_replaced_with_a_warning(photos: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    make_photo(32, 32).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:200])  # header intact, pixels cut off
    crops = TrainCrops([truncated, good], image_size=16)
    with pytest.warns(UserWarning, match="truncated.png"):
        samples = [crops[i] for i in range(2)]
    assert all(s.shape == (3, 16, 16) for s in samples)


def test_empty_or_unreadable_folders_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no image files found"):
        ContentImages(str(tmp_path)).setup("fit")
    (tmp_path / "a.jpg").write_text("text")
    (tmp_path / "b.png").write_bytes(b"\x89PNG garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="none of the image files could be read"):
            ContentImages(str(tmp_path)).setup("fit")
    with pytest.raises(ValueError, match="must be a folder"):
        ContentImages(str(tmp_path / "missing"))


# -- module ---------------------------------------------------------------------------------------


def test_loss_network_follows_device_dtype_and_memory_format_moves(style: Path) -> None:
    module = StyleTransferModule(style_image=str(style), style_size=32, channels_last=True, **TINY_MODEL)
    module.setup("fit")
    encoder_weight = next(module.perceptual.encoder.parameters())
    assert encoder_weight.is_contiguous(memory_format=torch.channels_last)
    module.to(torch.float64)
    assert next(module.perceptual.encoder.parameters()).dtype == torch.float64
    assert all(g.dtype == torch.float64 for g in module.perceptual.target_grams.values())
    assert all(not k.startswith(("_perceptual", "perceptual")) for k in module.state_dict())


def test_cosine_decay_over_the_last_steps_only(style: Path) -> None:
    module = StyleTransferModule(style_image=str(style), lr=1.0, lr_schedule="cosine", decay_steps=4, **TINY_MODEL)
    module._trainer = SimpleNamespace(max_steps=10)  # configure_optimizers reads only max_steps
    scheduler = module.configure_optimizers()["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(11):
        rates.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    assert rates[:7] == [1.0] * 7  # constant up to max_steps - decay_steps
    assert rates[7] == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert rates[7] > rates[8] > rates[9] > rates[10] == pytest.approx(0.0)


def test_precision_is_chosen_per_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_precision("auto") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert default_precision("auto") == "bf16-mixed"
    assert default_precision("cpu") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert default_precision("gpu") == "16-mixed"


# -- command line ---------------------------------------------------------------------------------


def test_data_shorthand_and_help(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "data.yaml"
    config.write_text("root: x\n")
    assert expand_data_shorthand(["--data", str(tmp_path), "--data=photos"]) == [
        "--data.root", str(tmp_path), "--data.root=photos"]
    assert expand_data_shorthand(["--data", str(config)]) == ["--data", str(config)]  # a data config file
    with pytest.raises(SystemExit) as exit_info:
        styletrans_main(["train", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--data DIR is short for --data.root DIR" in text
    assert "--trainer.max_steps" in text and "--model.style_weight" in text and "--ckpt_path" in text


def print_config(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--print_config"])
    assert exit_info.value.code == 0
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("config", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_parse_and_name_a_bundled_style(config: Path, photos: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    parsed = print_config(capsys, "--config", str(config), "--data", str(photos))
    assert resolve_image(parsed["model"]["style_image"], "styles").is_file()
    assert parsed["data"]["root"] == str(photos)


def test_documented_defaults_are_the_built_in_defaults(photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    documented = print_config(capsys, "--config", str(CONFIGS / "johnson2016.yaml"), "--data", str(photos))
    built_in = print_config(capsys, "--data", str(photos))
    # Layer dicts default to None in the signature (no mutable defaults) and resolve in __init__; so do the
    # loss weights (None: the built-in value, or a base's when a new style is trained onto one).
    assert built_in["model"]["content_layers"] is None and built_in["model"]["style_layers"] is None
    built_in["model"].update(content_layers=DEFAULT_CONTENT_LAYERS, style_layers=DEFAULT_STYLE_LAYERS)
    assert all(built_in["model"][key] is None for key in ("content_weight", "style_weight", "tv_weight"))
    built_in["model"].update(content_weight=1.0, style_weight=10.0, tv_weight=2.5e4)
    assert documented == built_in


# -- a real run ---------------------------------------------------------------------------------


def test_loss_falls_and_the_run_directory_has_everything(finished_run: tuple[Path, object]) -> None:
    run_dir, cli = finished_run
    assert cli.trainer.global_step == 30
    metrics = read_metrics(run_dir)
    train = [metrics[s]["train/total"] for s in sorted(metrics) if "train/total" in metrics[s]]
    assert len(train) >= 25
    first, last = sum(train[:5]) / 5, sum(train[-5:]) / 5
    assert last < 0.7 * first, (first, last)
    style = [metrics[s]["train/style"] for s in sorted(metrics) if "train/style" in metrics[s]]
    assert sum(style[-5:]) < 0.5 * sum(style[:5]), style  # moves towards the style
    val = [metrics[s]["val/total"] for s in sorted(metrics) if "val/total" in metrics[s]]
    assert len(val) == 3 and val[-1] < val[0]
    assert {"train/content", "train/style", "train/tv", "train/style_relu1_2", "val/style_relu2_2"} <= set(
        k for m in metrics.values() for k in m)

    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run_dir / "checkpoints").glob("best-step=*.ckpt"))) == 1
    assert (run_dir / "config.yaml").is_file()
    grids = sorted(p.name for p in (run_dir / "samples").glob("*.png"))
    assert grids == ["step_000000.png", "step_000010.png", "step_000020.png", "step_000030.png"]
    with Image.open(run_dir / "samples" / "step_000030.png") as grid:
        # 2 photos x (photo, stylized) at samples.size (not the 32 px crops), 2 px padding
        assert grid.size == (2 * 40 + 3 * 2, 2 * 40 + 3 * 2)


def test_the_best_checkpoint_has_the_lowest_validation_loss(finished_run: tuple[Path, object]) -> None:
    run_dir, _ = finished_run
    val = {step: m["val/total"] for step, m in read_metrics(run_dir).items() if "val/total" in m}
    assert len(val) == 3  # after steps 10, 20 and 30 (logged at the step before)
    (best,) = (run_dir / "checkpoints").glob("best-step=*.ckpt")
    ckpt = torch.load(best, weights_only=True, map_location="cpu")
    assert ckpt["global_step"] == min(val, key=val.get) + 1 and best.name == f"best-step={ckpt['global_step']:06d}.ckpt"
    (state,) = (v for k, v in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint"))
    assert float(state["best_model_score"]) == pytest.approx(min(val.values()), rel=1e-6)
    assert Path(state["best_model_path"]) == best


@pytest.mark.slow
def test_the_default_logger_is_wandb_offline(photos: Path, style: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``--trainer.logger``: W&B, offline (no account, no network), inside the run directory."""
    import wandb

    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    args = train_args(photos, style, tmp_path / "run", 3)
    at = args.index("--trainer.logger")
    cli = main([*args[:at], *args[at + 2:], "--trainer.val_check_interval", "3"])
    assert type(cli.trainer.logger).__name__ == "WandbLogger"
    cli.trainer.logger.experiment.finish()  # waits until the run's records are written
    wandb.finish()
    (offline,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    (log,) = offline.glob("run-*.wandb")  # the records `wandb sync` uploads: the metrics are in them
    records = log.read_bytes()
    assert all(key in records for key in (b"train/total", b"train/style_relu1_2", b"val/total"))
    assert list((offline / "files" / "media" / "images").glob("samples_*.png"))  # the sample grids


def test_checkpoint_contract(finished_run: tuple[Path, object], style: Path) -> None:
    run_dir, cli = finished_run
    ckpt_path = run_dir / "checkpoints" / "last.ckpt"
    ckpt = torch.load(ckpt_path, weights_only=True, map_location="cpu")  # plain types only
    hp = ckpt["hyper_parameters"]
    assert set(hp) >= CONTRACT_KEYS
    assert hp["style_name"] == "stripes" and hp["style_image"] == str(style)
    assert hp["transformer"] == {"base_channels": 8, "residual_blocks": 1, "space_to_depth": False, "styles": 1,
                                 "margin": 0}
    assert hp["style_layers"] == {"relu1_2": 1.0, "relu2_2": 1.0} and hp["image_size"] == 32
    assert ckpt["state_dict"] and all(k.startswith("transformer.") for k in ckpt["state_dict"])
    assert ckpt["global_step"] == 30 and ckpt["optimizer_states"]
    assert set(ckpt["style"]["grams"]) == {"relu1_2", "relu2_2"} and len(ckpt["style"]["sha256"]) == 64

    loaded = StyleTransferModule.load_from_checkpoint(ckpt_path, map_location="cpu")
    assert loaded._perceptual is None  # no VGG, no style image needed to load
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        assert torch.allclose(loaded(x), cli.model.transformer(x), atol=1e-6)


def test_last_checkpoint_is_the_final_step_between_saves(photos: Path, style: Path, tmp_path: Path) -> None:
    # Saves at steps 10 and 20 (validation); max_steps 25 ends between them: last.ckpt must be step 25's.
    cli = main(train_args(photos, style, tmp_path / "run", 25))
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert cli.trainer.global_step == 25 and ckpt["global_step"] == 25
    for name, value in cli.model.transformer.state_dict().items():
        assert torch.equal(ckpt["state_dict"][f"transformer.{name}"], value), name
    # Keyed as Lightning's own callback, so checkpoints written before this one resume with their state.
    assert any(key.startswith("ModelCheckpoint{") for key in ckpt["callbacks"])


def test_init_from_starts_at_a_trained_networks_weights(finished_run: tuple[Path, object], style: Path) -> None:
    run_dir, cli = finished_run
    ckpt_path = run_dir / "checkpoints" / "last.ckpt"
    small = {"base_channels": 8, "residual_blocks": 1}
    tuned = StyleTransferModule(style_image=str(style), transformer=small, init_from=str(ckpt_path))
    fresh = StyleTransferModule(style_image=str(style), transformer=small)
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        assert torch.allclose(tuned(x), cli.model.transformer(x), atol=1e-6)
        assert not torch.allclose(fresh(x), cli.model.transformer(x), atol=1e-3)
    with pytest.raises(ValueError, match="is not this run's"):
        StyleTransferModule(style_image=str(style), transformer="light", init_from=str(ckpt_path))
    # A margin holds no weights: a run with one may start from weights trained without.
    framed = StyleTransferModule(style_image=str(style), transformer={**small, "margin": 4}, init_from=str(ckpt_path))
    assert framed.transformer.config.margin == 4
    with torch.no_grad():
        assert not torch.allclose(framed(x), tuned(x), atol=1e-4)  # the same weights, run with the margin


# The killed run: ``styletrans train`` in a child process that stops for good when it reaches
# step 15 (after its step-10 checkpoint), telling the test so by a file, so that the kill
# lands at a known step however slow the machine is.
STOP_AT_STEP_15 = """
import pathlib, sys, time
from styletrans.training.cli import main
from styletrans.training.module import StyleTransferModule

marker = pathlib.Path(sys.argv[1])
step = StyleTransferModule.training_step

def training_step(self, *args, **kwargs):
    if self.global_step == 15:
        marker.write_text("15")
        time.sleep(3600)  # until the SIGKILL
    return step(self, *args, **kwargs)

StyleTransferModule.training_step = training_step
main(sys.argv[2:])
"""


def test_sigkill_mid_run_then_resume_matches_the_uninterrupted_run(
    finished_run: tuple[Path, object], photos: Path, style: Path, tmp_path: Path
) -> None:
    reference_dir, reference = finished_run
    run_dir = tmp_path / "killed"
    marker = tmp_path / "at_step_15"
    # The same run with no end in sight, killed at step 15: its last checkpoint is step 10's.
    cmd = [sys.executable, "-c", STOP_AT_STEP_15, str(marker), *train_args(photos, style, run_dir, 100_000)]
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    stderr = proc.communicate()[1].decode(errors="replace")
    assert marker.exists() and proc.returncode == -signal.SIGKILL, stderr[-2000:]  # killed mid-run, not finished
    last = run_dir / "checkpoints" / "last.ckpt"
    saved_step = torch.load(last, weights_only=True, map_location="cpu")["global_step"]
    assert saved_step == 10

    resumed = main([*train_args(photos, style, run_dir, 30)[:-2], "--ckpt_path", str(last),
                    "--trainer.enable_progress_bar", "true"])
    assert resumed.trainer.global_step == 30
    bar = resumed.trainer.progress_bar_callback  # counts steps to max_steps from the resumed step
    assert isinstance(bar, StepProgressBar)
    assert (bar.train_progress_bar.initial, bar.train_progress_bar.n, bar.train_progress_bar.total) == (10, 30, 30)
    assert Path(resumed.trainer.default_root_dir) == run_dir  # resumes into the same run directory
    # Same data order, same optimizer state: the weights end where the uninterrupted run's did.
    for name, value in reference.model.transformer.state_dict().items():
        assert torch.allclose(resumed.model.transformer.state_dict()[name], value, atol=1e-5), name
    # ... and the logged loss curve continues where the killed run left off.
    steps = sorted(s for s, m in read_metrics(run_dir).items() if "train/total" in m)
    assert steps[-1] == 29 and saved_step in steps
    ref = read_metrics(reference_dir)
    assert read_metrics(run_dir)[29]["train/total"] == pytest.approx(ref[29]["train/total"], rel=1e-4)


def test_recipe_config_layers_over_a_style_config(photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parsed = print_config(capsys, "--config", str(CONFIGS / "recipes" / "cpu.yaml"),
                          "--config", str(CONFIGS / "great_wave.yaml"), "--data", str(photos))
    assert parsed["model"]["style_image"] == "great_wave"  # from the style config
    assert parsed["data"]["image_size"] == 128 and parsed["model"]["lr_schedule"] == "cosine"  # from the recipe
    assert parsed["snapshots"]["every_minutes"] > 0


def test_timed_snapshots_record_step_and_seconds_and_load_as_models(photos: Path, style: Path,
                                                                    tmp_path: Path) -> None:
    from styletrans.models.checkpoint import load_transformer

    run_dir = tmp_path / "timed"
    cli = main(train_args(photos, style, run_dir, 12, "--snapshots.every_minutes", "0.001"))
    index = json.loads((run_dir / "snapshots" / "index.json").read_text())
    assert len(index) >= 2
    steps, seconds = [e["step"] for e in index], [e["seconds"] for e in index]
    assert steps == sorted(set(steps)) and seconds == sorted(seconds) and steps[-1] == 12
    assert {p.name for p in (run_dir / "snapshots").glob("*.ckpt")} == {e["file"] for e in index}
    net, metadata = load_transformer(run_dir / "snapshots" / index[-1]["file"])
    assert metadata["training"]["loss_network"] == "random"
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(net(x), cli.model.transformer.eval()(x))  # the last snapshot is the final network


def test_the_snapshot_clock_continues_after_a_resume() -> None:
    from styletrans.training.callbacks import TimedSnapshots

    clock = TimedSnapshots(every_minutes=1)
    clock.load_state_dict({"elapsed_seconds": 150.0})  # what a checkpoint carries
    assert clock.elapsed() == 150.0
    assert clock.state_dict() == {"elapsed_seconds": 150.0}
    saved = []
    clock.save = lambda *_: saved.append(clock.elapsed())  # type: ignore[method-assign]
    clock.on_train_batch_end(None, None)  # 150 s: the 2-minute snapshot was taken before the resume
    clock.elapsed_before = 400.0  # the clock jumps past three marks (a resume with a shorter interval)
    clock.on_train_batch_end(None, None)
    clock.on_train_batch_end(None, None)
    assert saved == [400.0]  # one snapshot, not one per step until the count catches up
    with pytest.raises(ValueError, match="every_minutes"):
        TimedSnapshots(every_minutes=-1)
