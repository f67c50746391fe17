#!/usr/bin/env bash
# Multi-GPU DDP training with torchrun: one process per GPU, Lightning reads torchrun's
# environment. Tested by tests/test_ddp.py (2 processes, gloo, CPU: add
# --trainer.accelerator cpu).
#
#   GPUS=4 DATA=PHOTOS_DIR train/torchrun.sh [--trainer.max_steps 20000 ...]
#
# Several machines: the same command on each, with NNODES, NODE_RANK and MASTER (the
# address of node 0) set; every node must see DATA and RUN_DIR at the same paths:
#
#   NNODES=2 NODE_RANK=0 MASTER=10.0.0.1 GPUS=4 DATA=/shared/photos RUN_DIR=/shared/runs/sn train/torchrun.sh
#   NNODES=2 NODE_RANK=1 MASTER=10.0.0.1 GPUS=4 DATA=/shared/photos RUN_DIR=/shared/runs/sn train/torchrun.sh
#
# Simplest on one machine: let Lightning start one process per GPU itself:
#   styletrans train --config configs/starry_night.yaml --data PHOTOS_DIR \
#       --trainer.devices 4 --trainer.strategy ddp
#
# --run_dir is given explicitly so that every rank agrees on it. data.batch_size is per
# process: 4 GPUs x 4 = 16 images per step, so the learning rate or max_steps may want
# adjusting (Johnson et al. used batch 4, lr 1e-3, 40k steps).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GPUS=${GPUS:-4}
NNODES=${NNODES:-1}
CONFIG=${CONFIG:-$HERE/../configs/starry_night.yaml}
DATA=${DATA:?set DATA to a folder of content photos}
RUN_DIR=${RUN_DIR:-runs/$(basename "$CONFIG" .yaml)/ddp-$(date +%Y%m%d-%H%M%S)}

if [ "$NNODES" -gt 1 ]; then
    # c10d rendezvous on node 0; the run id keeps two jobs on the same nodes apart.
    LAUNCH=(--nnodes "$NNODES" --node_rank "${NODE_RANK:?set NODE_RANK (0 on the master)}"
            --rdzv_backend c10d --rdzv_endpoint "${MASTER:?set MASTER to the address of node 0}:${PORT:-29400}"
            --rdzv_id "${RDZV_ID:-styletrans}")
else
    LAUNCH=(--standalone)
fi

torchrun "${LAUNCH[@]}" --nproc_per_node "$GPUS" "$HERE/train.py" \
    --config "$CONFIG" --data "$DATA" --run_dir "$RUN_DIR" \
    --trainer.devices "$GPUS" --trainer.num_nodes "$NNODES" --trainer.strategy ddp "$@"
