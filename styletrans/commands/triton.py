"""``styletrans triton-repo``: exported models -> an NVIDIA Triton Inference Server model repository."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "triton-repo", help="write a Triton Inference Server model repository from exported models",
        description="Write DIR/STYLE/config.pbtxt (onnxruntime backend, dynamic batching, input dims [3, -1, -1]) "
        "and DIR/STYLE/1/model.onnx for each MODEL (an .onnx file or a model name). Run it with "
        "`tritonserver --model-repository DIR`; see serve/README.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("repo", type=Path, metavar="DIR", help="model repository folder (created if missing)")
    p.add_argument("models", nargs="+", metavar="MODEL", help="exported .onnx files or model names")
    p.add_argument("--max-batch-size", type=int, default=8, help="largest batch Triton forms")
    p.add_argument("--batch-delay-ms", type=float, default=10.0, help="how long Triton waits to fill a batch")
    p.add_argument("--max-queue", type=int, default=64, help="queued requests per model before Triton rejects")
    p.add_argument("--fp16-tensorrt", action="store_true",
                   help="run through ONNX Runtime's TensorRT accelerator in fp16 (NVIDIA GPUs)")
    p.add_argument("--overwrite", action="store_true", help="replace existing entries of the repository")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from styletrans.serving.triton import parse_config, write_triton_repo

    folders = write_triton_repo(args.models, args.repo, args.max_batch_size, args.fp16_tensorrt,
                                overwrite=args.overwrite, batch_delay_ms=args.batch_delay_ms,
                                max_queue=args.max_queue)
    try:
        for folder in folders:
            parse_config((folder / "config.pbtxt").read_text())
        checked = "configs checked against Triton's ModelConfig schema"
    except ModuleNotFoundError:
        checked = "configs not checked (tritonclient is not installed)"
    for folder in folders:
        print(f"wrote {folder}/config.pbtxt and {folder}/1/model.onnx")
    print(f"{len(folders)} model(s) in {args.repo}; {checked}\n"
          f"run: docker run --gpus all -p 8000:8000 -p 8001:8001 -p 8002:8002 "
          f"-v {args.repo.resolve()}:/models nvcr.io/nvidia/tritonserver:<yy.mm>-py3 "
          f"tritonserver --model-repository=/models")
    return 0
