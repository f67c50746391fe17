"""A real multi-process training run: ``train/torchrun.sh`` starts 2 DDP processes (gloo,
CPU) for a few steps on tiny generated photos. Checks: each rank trained on its own
share of the data stream, the loss falls, rank 0 alone wrote the one checkpoint, and
that checkpoint resumes in a single process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from pytorch_lightning import Callback, LightningModule, Trainer

from styletrans.training.cli import main
from styletrans.training.data import ContentImages, TrainCrops
from tests.conftest import make_photo

REPO = Path(__file__).resolve().parents[1]
STEPS, BATCH, WORLD = 20, 2, 2


class RecordRank(Callback):
    """Appends what this rank trained on, its losses and its checkpoint writes to
    ``DIR/rank{N}.jsonl``. Loaded into the DDP processes by class path (``--trainer.callbacks``)."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def _log(self, trainer: Trainer, record: dict[str, Any]) -> None:
        with open(self.out_dir / f"rank{trainer.global_rank}.jsonl", "a") as f:
            f.write(json.dumps({"world": trainer.world_size, **record}) + "\n")

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # Wrap the checkpoint writer itself: what reaches it on a rank is what that rank writes.
        io = trainer.strategy.checkpoint_io
        original = io.save_checkpoint

        def save_checkpoint(checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            self._log(trainer, {"event": "save", "path": str(path), "step": checkpoint["global_step"]})
            original(checkpoint, path, storage_options)

        io.save_checkpoint = save_checkpoint
        self._log(trainer, {"event": "setup", "backend": str(getattr(trainer.strategy, "process_group_backend", ""))})

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # After a resume this runs once the checkpoint is restored: the weights it started from.
        total = sum(float(p.double().sum()) for p in pl_module.transformer.parameters())
        self._log(trainer, {"event": "start", "step": trainer.global_step, "weights": total})

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        self._log(trainer, {"event": "batch", "step": trainer.global_step, "batch": batch.tolist()})

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self._log(trainer, {"event": "loss", "step": trainer.global_step - 1, "loss": float(loss.detach())})


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run_args(photos: Path, style: Path, max_steps: int, probe_dir: Path) -> list[str]:
    """32 px crops, batch 2 per process, a tiny network, the random loss network, one checkpoint file."""
    return [
        "--data.image_size", "32", "--data.batch_size", str(BATCH), "--data.num_workers", "0",
        "--data.val_fraction", "0.25",
        "--model.style_image", str(style), "--model.style_size", "32", "--model.loss_network", "random",
        "--model.transformer", "{base_channels: 8, residual_blocks: 1}", "--model.style_weight", "1e4",
        "--model.tv_weight", "100",
        "--model.content_layers", "{relu2_2: 1.0}", "--model.style_layers", "{relu1_2: 1.0, relu2_2: 1.0}",
        "--trainer.accelerator", "cpu", "--trainer.max_steps", str(max_steps), "--trainer.val_check_interval", "10",
        "--trainer.log_every_n_steps", "1", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--trainer.num_sanity_val_steps", "0",
        "--trainer.logger", "CSVLogger", "--samples.every_n_steps", "0",
        "--checkpoint.save_top_k", "0", "--checkpoint.save_last", "true",  # last.ckpt only
        "--trainer.callbacks+=tests.test_ddp.RecordRank", f"--trainer.callbacks.out_dir={probe_dir}",
    ]


@pytest.mark.slow  # two processes that each import torch and Lightning: ~30-60 s on 2 busy cores
def test_two_process_ddp_via_torchrun_then_resume_in_one_process(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(8):
        make_photo(40 + 8 * i, 48, seed=i).save(photos / f"p{i}.png")
    style = tmp_path / "style.png"
    make_photo(48, 48, seed=42).save(style)
    run_dir, probe = tmp_path / "run", tmp_path / "probe"
    probe.mkdir()

    env = {**os.environ, "GPUS": "2", "DATA": str(photos), "RUN_DIR": str(run_dir),
           "CONFIG": str(REPO / "configs" / "starry_night.yaml"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    proc = subprocess.run(["bash", str(REPO / "train" / "torchrun.sh"), *run_args(photos, style, STEPS, probe)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]

    ranks = [read(probe / f"rank{r}.jsonl") for r in range(WORLD)]
    assert all(r and r[0]["world"] == WORLD and r[0]["backend"] == "gloo" for r in ranks)

    # Different data per rank: rank r, step s trained on samples s*B*W + r, + W, ... of the
    # deterministic stream (the DistributedSampler's interleaving), recomputed here.
    data = ContentImages(str(photos), image_size=32, batch_size=BATCH, num_workers=0, val_fraction=0.25)
    data.setup("fit")
    crops = TrainCrops(data.train_files, 32, seed=0)
    for rank, records in enumerate(ranks):
        batches = {e["step"]: torch.tensor(e["batch"]) for e in records if e["event"] == "batch"}
        assert sorted(batches) == list(range(STEPS))
        for step in (0, STEPS - 1):
            first = step * BATCH * WORLD + rank
            expected = torch.stack([crops[first + WORLD * k] for k in range(BATCH)])
            assert torch.allclose(batches[step], expected, atol=1e-6), (rank, step)
    first_batches = [next(e["batch"] for e in records if e["event"] == "batch") for records in ranks]
    assert not torch.equal(torch.tensor(first_batches[0]), torch.tensor(first_batches[1]))

    # The loss falls on every rank (each sees its own share; DDP keeps the weights in step).
    for records in ranks:
        losses = [e["loss"] for e in records if e["event"] == "loss"]
        assert len(losses) == STEPS and sum(losses[-5:]) < 0.8 * sum(losses[:5]), losses

    # One checkpoint file, written by rank 0 alone.
    saves = [[e for e in records if e["event"] == "save"] for records in ranks]
    assert saves[0] and not saves[1]
    assert {Path(e["path"]).name for e in saves[0]} == {"last.ckpt"} and saves[0][-1]["step"] == STEPS
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["last.ckpt"]
    assert not list(run_dir.parent.glob("version_*"))  # rank 1 made no run directory of its own

    # The DDP checkpoint resumes in a single process (no launcher, no process group).
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")["state_dict"]
    saved_weights = sum(float(v.double().sum()) for k, v in saved.items()
                        if k.startswith("transformer.") and "running_" not in k and "num_batches" not in k)
    shutil.rmtree(probe)
    probe.mkdir()
    last = run_dir / "checkpoints" / "last.ckpt"
    resumed = main([*run_args(photos, style, STEPS + 5, probe), "--data", str(photos), "--run_dir", str(run_dir),
                    "--ckpt_path", str(last), "--trainer.devices", "1"])
    assert resumed.trainer.world_size == 1 and resumed.trainer.global_step == STEPS + 5
    single = read(probe / "rank0.jsonl")
    resumed_batches = [e for e in single if e["event"] == "batch"]
    assert [e["step"] for e in resumed_batches] == list(range(STEPS, STEPS + 5))
    # ... reading the stream where the 2 processes stopped (sample STEPS*B*W), not from STEPS*B.
    first = STEPS * BATCH * WORLD
    expected = torch.stack([crops[first + k] for k in range(BATCH)])
    assert torch.allclose(torch.tensor(resumed_batches[0]["batch"]), expected, atol=1e-6)
    start = next(e for e in single if e["event"] == "start")
    assert start["step"] == STEPS and start["weights"] == pytest.approx(saved_weights, rel=1e-9)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two launchers and two training processes: ~30-60 s on 2 busy cores
def test_the_multi_node_command_with_two_nodes_on_this_machine(tmp_path: Path) -> None:
    """``NNODES=2 NODE_RANK=0|1 MASTER=...`` (the documented multi-node form): two torchrun
    launchers of one process each meet through the c10d rendezvous and train as one job."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(6):
        make_photo(40, 48, seed=i).save(photos / f"p{i}.png")
    style = tmp_path / "style.png"
    make_photo(48, 48, seed=42).save(style)
    run_dir, probe = tmp_path / "run", tmp_path / "probe"
    probe.mkdir()
    env = {**os.environ, "NNODES": "2", "MASTER": "127.0.0.1", "PORT": str(free_port()), "GPUS": "1",
           "DATA": str(photos), "RUN_DIR": str(run_dir), "CONFIG": str(REPO / "configs" / "starry_night.yaml"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    args = [*run_args(photos, style, 4, probe), "--trainer.val_check_interval", "4"]
    nodes = [subprocess.Popen(["bash", str(REPO / "train" / "torchrun.sh"), *args], cwd=tmp_path,
                              env={**env, "NODE_RANK": str(rank)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for rank in (0, 1)]
    errors = [node.communicate(timeout=600)[1] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], errors[0][-3000:] + errors[1][-3000:]
    ranks = [read(probe / f"rank{r}.jsonl") for r in range(2)]
    assert all(r and r[0]["world"] == 2 for r in ranks)
    assert all(sum(e["event"] == "batch" for e in r) == 4 for r in ranks)
    assert [bool([e for e in r if e["event"] == "save"]) for r in ranks] == [True, False]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
