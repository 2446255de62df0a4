#!/usr/bin/env bash
# The GPU figures of issue 19, in a few minutes on one card (run from the repository root in
# the project's venv): the card, LeNet-5 training images/s at batch 128 (bf16 autocast on and
# off, train_speed.py), fused K = 8, 32, 64 against unfused (fused_speed.py), and a 64-trial
# sweep at gpu: 0.25 and 1 against fused trials (sweep_speed.py).
set -euo pipefail
cd "$(dirname "$0")/.."
python - <<'PY'
import torch
print("card:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (no CUDA device)")
PY
python benchmarks/train_speed.py --device cuda --quick
python benchmarks/fused_speed.py --device cuda --k 8 32 64 --epochs 1
# trials per minute on the card: 4 unfused trials at gpu: 0.25 against 1 at gpu: 1, and
# fused K = 8, 32, 64 (each fused trial at gpu: 0.25), 64 trials of one epoch
python benchmarks/sweep_speed.py --trials 64 --k 8 32 64 --gpu 0.25 1 --cpus 8
