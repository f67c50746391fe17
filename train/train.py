"""Training entry point for launchers that want a script path (torchrun, srun, W&B sweeps).

Same arguments as ``styletrans train``:

    python train/train.py --config configs/starry_night.yaml --data PHOTOS_DIR
"""

from styletrans.training.cli import main

if __name__ == "__main__":
    main()
