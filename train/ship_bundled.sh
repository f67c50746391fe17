#!/usr/bin/env bash
# Ship a multi-style checkpoint as the bundled styles (models/README.md, "How the seven-style network was
# trained"): a fp16 file and an int8 file per style, the mixing model, the fine-tune base, the resume
# checkpoint and the demo grid. Each export is verified against PyTorch before it replaces a file.
#
#   train/ship_bundled.sh RUN/checkpoints/last.ckpt [CALIBRATION_PHOTOS]
set -euo pipefail
ckpt=${1:?usage: train/ship_bundled.sh CHECKPOINT [CALIBRATION_PHOTOS]}
photos=${2:-../shared/data/train_256}
models=styletrans/assets/models
bin=${BIN:-.venv/bin}

"$bin/styletrans" export --fp16 --overwrite "$ckpt" -o "$models/"
"$bin/styletrans" export --fp16 --overwrite --mix "$ckpt" -o "$models/"
for model in "$models"/*.onnx; do
    case $model in *.int8.onnx | *.mix.onnx) continue ;; esac
    "$bin/styletrans" quantize --overwrite --calibration "$photos" "$model"
done
name=$("$bin/python" -c 'import sys; from styletrans.models.checkpoint import load_transformer
print(load_transformer(sys.argv[1])[1]["style_name"])' "$ckpt")
"$bin/python" train/slim_checkpoint.py --base "$ckpt" "$models/$name.ckpt"
"$bin/python" train/slim_checkpoint.py "$ckpt" "train/resume/$name.ckpt"
"$bin/styletrans" demo --output models/grid.jpg --overwrite
