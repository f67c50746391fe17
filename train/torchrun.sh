#!/usr/bin/env bash
# Multi-GPU training on one machine with DDP.
#
# Simplest: let Lightning start one process per GPU itself:
#   styletrans train --config configs/starry_night.yaml --data PHOTOS_DIR \
#       --trainer.devices 4 --trainer.strategy ddp
#
# Or with torchrun (one process per GPU started by torchrun; Lightning reads its
# environment). --run_dir is given explicitly so that every rank agrees on it.
# data.batch_size is per GPU: 4 GPUs x 4 = 16 images per step, so the learning rate
# or max_steps may want adjusting (Johnson et al. used batch 4, lr 1e-3, 40k steps).
set -euo pipefail
GPUS=${GPUS:-4}
CONFIG=${CONFIG:-configs/starry_night.yaml}
DATA=${DATA:?set DATA to a folder of content photos}
RUN_DIR=${RUN_DIR:-runs/$(basename "$CONFIG" .yaml)/ddp-$(date +%Y%m%d-%H%M%S)}

torchrun --standalone --nproc_per_node "$GPUS" train/train.py \
    --config "$CONFIG" --data "$DATA" --run_dir "$RUN_DIR" \
    --trainer.devices "$GPUS" --trainer.strategy ddp "$@"
