#!/usr/bin/env bash
# Train several styles at once on one lent GPU machine and bring back fp16 ONNX models.
#
# Here, once:  python train/device_bundle.py --data ../shared/data/train_256
# There (the device tool's `run`, with carry [".device"]):
#   STYLES="starry_night great_wave the_scream composition_vii" MINUTES=7 bash train/device_styles.sh
#
# Every style trains in its own process, all at the same time on the one GPU (a single
# batch-4 run leaves most of an H100 idle), for MINUTES of wall time (Lightning's
# max_time; a device command may run 10 minutes), from its config in configs/. Each is
# then exported to $OUT/<style>.fp16.onnx, verified against PyTorch as always. Logs,
# metrics.csv and sample grids come back in $OUT/runs.tar.gz (checkpoints do not: they
# are over the 16 MiB a returned file may have). Extra arguments go to every
# `styletrans train`, e.g. --data.batch_size 8.
set -euo pipefail
STYLES=${STYLES:-starry_night great_wave the_scream composition_vii}
MINUTES=${MINUTES:-7}
BUNDLE=${BUNDLE:-.device}
OUT=${OUT:?OUT must name the folder to bring results back in}
RUNS=runs/device

if [[ ! -d $BUNDLE/whl || ! -d $BUNDLE/train_256 ]]; then
    echo "$BUNDLE/ is missing or incomplete: run \`python train/device_bundle.py --data PHOTOS\` first and carry it" >&2
    exit 2
fi
count=$(wc -w <<<"$STYLES")
workers=$(( $(nproc) / count > 2 ? $(nproc) / count - 1 : 1 ))  # data loaders share the CPU cores

# The machine has no registry: jsonargparse (for LightningCLI) comes as carried wheels.
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site "$BUNDLE"/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true

mkdir -p "$RUNS"
pids=()
for style in $STYLES; do
    python3 -m styletrans train --config "configs/$style.yaml" --data "$BUNDLE/train_256" \
        --model.loss_network "file:$BUNDLE/vgg16-caffe-relu4_3-fp16.pt" \
        --trainer.logger CSVLogger --trainer.max_time "00:00:$(printf %02d "$MINUTES"):00" \
        --data.num_workers "$workers" --run_dir "$RUNS/$style" "$@" >"$RUNS/$style.log" 2>&1 &
    pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { failed=1; echo "training failed: $(echo $STYLES | cut -d' ' -f$((i + 1)))"; }
done

for style in $STYLES; do
    ckpt=$RUNS/$style/checkpoints/last.ckpt
    if [[ -f $ckpt ]]; then
        python3 -m styletrans export "$ckpt" --fp16 --output "$OUT/$style.fp16.onnx" >>"$RUNS/$style.log" 2>&1 \
            || { failed=1; echo "export failed: $style"; }
    fi
    tail -n 3 "$RUNS/$style.log"
done
tar czf "$OUT/runs.tar.gz" --exclude='*.ckpt' "$RUNS"
exit $failed
