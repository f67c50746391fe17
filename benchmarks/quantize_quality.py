"""Quality kept by int8 quantization, per bundled style: int8 output against fp32 output.

    python benchmarks/quantize_quality.py --content-dir ../shared/data/dev_eval --limit 20

For each bundled ``STYLE.onnx`` (``styletrans/assets/models/``) with its ``STYLE.int8.onnx`` beside it (written by
``styletrans quantize``), on each photo (first ``--limit`` of the folder, sorted):

- SSIM of the int8 output against the fp32 output (the fp16 model widened to fp32, exactly
  its weights; goal >= 0.98);
- the total loss the model was trained with (``styletrans evaluate``'s loss, rebuilt from the
  model's metadata: loss network, layers, weights, style image and size; no Gatys run) of
  both outputs; goal: int8 within 5 % of fp32.

Prints a table and writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import cpu_name, write_json

ROOT = Path(__file__).resolve().parent
SSIM_GOAL = 0.98
LOSS_GOAL = 0.05


def evaluate_style(model_path: Path, int8: Path, photos: list[Path], size: int, threads: int) -> dict:
    import onnx

    from styletrans.assets import resolve_image
    from styletrans.evaluation.runner import gatys_settings, load_model
    from styletrans.evaluation.similarity import similarity
    from styletrans.images import load_image
    from styletrans.inference import OnnxBackend
    from styletrans.inference.quantize import widen_fp16

    device = torch.device("cpu")
    model = load_model(model_path, device, threads)
    loss = gatys_settings(model, 1).build_loss(device)
    style = load_image(resolve_image(str(model.training["style_image"]), "styles"), model.training.get("style_size"))
    loss.set_style(style[None])
    with tempfile.TemporaryDirectory() as tmp:
        wide = onnx.load(os.fspath(model_path))
        widen_fp16(wide)
        onnx.save_model(wide, os.fspath(Path(tmp) / "fp32.onnx"))
        fp32 = OnnxBackend(Path(tmp) / "fp32.onnx", provider="cpu", threads=threads)
    quantized = OnnxBackend(int8, provider="cpu", threads=threads)
    rows = []
    for photo in photos:
        content = load_image(photo, size)[None]
        with torch.no_grad():
            targets = loss.content_targets(content)
            out32, out8 = fp32(content), quantized(content)
            loss32 = loss(out32.clamp(0, 1), targets).as_floats()["total"]
            loss8 = loss(out8.clamp(0, 1), targets).as_floats()["total"]
        sim = similarity(out8, out32)
        rows.append({"photo": photo.name, "ssim": sim["ssim"], "psnr": sim["psnr"], "loss_fp32": loss32,
                     "loss_int8": loss8, "loss_change": loss8 / loss32 - 1})
        print(f"  {photo.name:14} SSIM {sim['ssim']:.4f}  PSNR {sim['psnr']:5.1f} dB  loss fp32 {loss32:.4g} "
              f"int8 {loss8:.4g} ({100 * (loss8 / loss32 - 1):+.2f} %)", flush=True)
    ssims = [r["ssim"] for r in rows]
    total32 = sum(r["loss_fp32"] for r in rows)
    total8 = sum(r["loss_int8"] for r in rows)
    summary = {
        "ssim_mean": statistics.mean(ssims), "ssim_min": min(ssims),
        "psnr_mean": statistics.mean(r["psnr"] for r in rows),
        "loss_fp32_mean": total32 / len(rows), "loss_int8_mean": total8 / len(rows),
        "loss_change_of_means": total8 / total32 - 1,
        "loss_change_max_abs": max(abs(r["loss_change"]) for r in rows),
    }
    summary["passed"] = summary["ssim_mean"] >= SSIM_GOAL and abs(summary["loss_change_of_means"]) <= LOSS_GOAL
    return {"model": model_path.name, "int8": int8.name, "quantization": quantized.metadata.get("quantization"),
            "summary": summary, "photos": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", type=Path, default=ROOT.parent / "styletrans" / "assets" / "models")
    parser.add_argument("--content-dir", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--size", type=int, default=None, help="longest side (default: the photos' own)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--styles", nargs="*", default=None)
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "quantize_quality.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from styletrans.images import find_images

    photos = find_images(args.content_dir)[: args.limit]
    results = {}
    start = time.perf_counter()
    for model_path in sorted(args.models_dir.glob("*.onnx")):
        name = model_path.name.removesuffix(".onnx")
        int8 = model_path.with_name(f"{name}.int8.onnx")
        if name.endswith(".int8") or not int8.is_file() or (args.styles and name not in args.styles):
            continue
        print(f"{name}: {len(photos)} photos", flush=True)
        results[name] = evaluate_style(model_path, int8, photos, args.size, args.threads)
    print(f"\n{'style':16} {'SSIM mean':>9} {'SSIM min':>8} {'PSNR':>6} {'loss fp32':>10} {'loss int8':>10} "
          f"{'change':>8}  pass (SSIM >= {SSIM_GOAL}, |change| <= {100 * LOSS_GOAL:.0f} %)")
    for name, result in results.items():
        s = result["summary"]
        print(f"{name:16} {s['ssim_mean']:9.4f} {s['ssim_min']:8.4f} {s['psnr_mean']:6.1f} {s['loss_fp32_mean']:10.4g} "
              f"{s['loss_int8_mean']:10.4g} {100 * s['loss_change_of_means']:+7.2f}%  {s['passed']}")
    report = {"cpu": cpu_name(), "content_dir": str(args.content_dir), "photos": len(photos), "size": args.size,
              "seconds": round(time.perf_counter() - start), "ssim_goal": SSIM_GOAL, "loss_goal": LOSS_GOAL,
              "styles": results}
    write_json(args.json, report)


if __name__ == "__main__":
    main()
