"""Training throughput: images per second of one full training step, per precision mode.

One step = transformer forward, VGG content targets (no grad), VGG on the output with
backward, Adam update: exactly ``StyleTransferModule.compute_loss`` plus the optimizer, on
synthetic photos already on the device (data loading is measured separately with --data).

    python benchmarks/train_throughput.py                          # 256 px, batch 4 and 16, all modes
    python benchmarks/train_throughput.py --batch-sizes 4 --modes fp32 bf16 --steps 2 --warmup 1
    python benchmarks/train_throughput.py --data ../shared/data/train_256 --workers 8
    python benchmarks/train_throughput.py --profile bf16+cl        # torch.profiler table for one mode

Modes: fp32; bf16 (autocast); channels_last (fp32, NHWC); bf16+cl; compile (bf16 + NHWC +
torch.compile of the transformer and the loss network; on CPU fp32 + NHWC + compile).
A mode that fails (e.g. compile without a working compiler) is reported with its error and skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import traceback
from pathlib import Path

import torch
from common import cpu_name, write_json

from styletrans.training.module import StyleTransferModule
from styletrans.weights import WeightsError, load_weights

MODES = ("fp32", "bf16", "channels_last", "bf16+cl", "compile")


def pick_loss_network(name: str) -> str:
    """The real weights when installed; the same architecture with random weights otherwise
    (the cost of a step does not depend on the weight values)."""
    try:
        load_weights(name)
        return name
    except WeightsError:
        return "random"


def build(mode: str, device: torch.device, transformer: str, loss_network: str,
          size: int) -> tuple[StyleTransferModule, torch.optim.Optimizer, torch.dtype | None]:
    cuda = device.type == "cuda"
    module = StyleTransferModule(transformer=transformer, loss_network=loss_network, image_size=size,
                                 channels_last=mode in ("channels_last", "bf16+cl", "compile"),
                                 compile=mode == "compile").to(device)
    module.prepare(device)
    optimizer = torch.optim.Adam(module.transformer.parameters(), lr=1e-3)
    bf16 = mode in ("bf16", "bf16+cl") or (mode == "compile" and cuda)
    return module, optimizer, torch.bfloat16 if bf16 else None


def measure(mode: str, batch: int, args: argparse.Namespace, device: torch.device) -> dict:
    module, optimizer, dtype = build(mode, device, args.transformer, args.loss_network, args.size)
    images = torch.rand(batch, 3, args.size, args.size, device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
            loss = module.compute_loss(images).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    start = time.perf_counter()
    for _ in range(args.warmup):  # includes compilation and cuDNN autotuning
        step()
    sync()
    warmup_s = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    seconds = time.perf_counter() - start
    row = {"mode": mode, "batch": batch, "size": args.size, "steps": args.steps,
           "images_per_s": round(batch * args.steps / seconds, 2), "ms_per_step": round(1000 * seconds / args.steps, 1),
           "warmup_s": round(warmup_s, 1)}
    if device.type == "cuda":
        row["peak_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return row


def profile(mode: str, batch: int, args: argparse.Namespace, device: torch.device) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    module, optimizer, dtype = build(mode, device, args.transformer, args.loss_network, args.size)
    images = torch.rand(batch, 3, args.size, args.size, device=device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    for i in range(args.warmup + 2):
        with torch_profile(activities=activities) if i == args.warmup + 1 else contextlib.nullcontext() as prof:
            with torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
                loss = module.compute_loss(images).total
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
    key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=25))


def measure_loader(args: argparse.Namespace) -> dict:
    """Images per second the data pipeline delivers (decode + random resized crop)."""
    from styletrans.training.data import ContentImages

    data = ContentImages(args.data, image_size=args.size, batch_size=16, num_workers=args.workers)
    data.setup("fit")
    loader = iter(data.train_dataloader())
    next(loader)  # worker start-up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.loader_seconds:
        count += len(next(loader))
    rate = count / (time.perf_counter() - start)
    return {"workers": args.workers, "size": args.size, "images_per_s": round(rate, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 20 on GPU, 2 on CPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (default: 5 on GPU, 1 on CPU)")
    parser.add_argument("--transformer", default="default")
    parser.add_argument("--loss-network", default="vgg16-caffe")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--data", default=None, help="also measure the data loader on this folder")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--loader-seconds", type=float, default=10.0)
    parser.add_argument("--profile", choices=MODES, default=None, help="print a torch.profiler table instead")
    parser.add_argument("--json", type=Path, default=None,
                        help="results file (default: benchmarks/results/train_throughput_<cpu|cuda>.json)")
    args = parser.parse_args()

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    args.steps = args.steps or (20 if cuda else 2)
    args.warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    if args.threads:
        torch.set_num_threads(args.threads)
    if cuda:
        torch.backends.cudnn.benchmark = True
    args.loss_network = pick_loss_network(args.loss_network)
    if args.profile:
        profile(args.profile, args.batch_sizes[0], args, device)
        return

    name = torch.cuda.get_device_name(device) if cuda else f"{cpu_name()}, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; {args.transformer} transformer; loss network "
          f"{args.loss_network}; {args.size} px; {args.steps} timed steps after {args.warmup} warm-up")
    rows = []
    mem_header = f"{'peak GiB':>10}" if cuda else ""
    print(f"{'mode':<14}{'batch':>6}{'img/s':>10}{'ms/step':>10}{'warmup s':>10}{mem_header}")
    for batch in args.batch_sizes:
        for mode in args.modes:
            try:
                row = measure(mode, batch, args, device)
            except Exception as exc:  # a mode that cannot run here is reported, not fatal
                row = {"mode": mode, "batch": batch, "size": args.size, "error": f"{type(exc).__name__}: {exc}"[:300]}
                traceback.print_exc(limit=1)
            rows.append(row)
            if "error" in row:
                print(f"{mode:<14}{batch:>6}  skipped: {row['error']}")
            else:
                mem = f"{row['peak_mem_gib']:>10}" if cuda else ""
                print(f"{mode:<14}{batch:>6}{row['images_per_s']:>10}{row['ms_per_step']:>10}{row['warmup_s']:>10}{mem}")
            if cuda:
                torch.cuda.empty_cache()
    result = {"device": name, "torch": torch.__version__, "transformer": args.transformer,
              "loss_network": args.loss_network, "rows": rows}
    if args.data:
        result["loader"] = measure_loader(args)
        print(f"data loader: {result['loader']['images_per_s']} images/s with {args.workers} workers")
    args.json = args.json or Path(f"benchmarks/results/train_throughput_{device.type}.json")
    write_json(args.json, result)


if __name__ == "__main__":
    main()
