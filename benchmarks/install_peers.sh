#!/usr/bin/env bash
# Build the benchmark environment .venv-bench: plastic + the peer libraries.
#
#   bash benchmarks/install_peers.sh && .venv-bench/bin/python benchmarks/run.py --json benchmarks/results/latest.json
#
# torch is pinned (torch==2.13.0, the CPU build where the registry serves one)
# and installed first; every later install runs under a constraint that holds
# it, and the peers themselves (benchmarks/requirements-peers.txt) go in with
# --no-deps, because their own pins (torch==2.4.1, torch>=2.14, torchvision,
# torchaudio, ...) would pull another torch build (a CUDA torch is several GB).
# Only the modules the peers import at module level are installed beside them.
# A peer that still fails to import is reported by run.py as
# "unavailable: <reason>"; this script does not stop on it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv-bench}"
PYTHON="${PYTHON:-python3}"
TORCH="${TORCH:-torch==2.13.0}"

# What the peers import at module level (and plastic's own dependencies).
# None of these depends on torch.
IMPORTS=(
  numpy scipy einops attrs psutil
  loguru tensorboard                # spikingjelly: its logger; torch.utils.tensorboard in its monitor
  matplotlib pandas tensorboardX    # bindsnet's package __init__ imports analysis, ...
  scikit-learn tqdm                 # ... evaluation, pipeline (and plastic's demo),
  opencv-python-headless            # ... datasets (cv2) and
  gymnasium ale-py                  # ... environment
  hypothesis                        # plastic.testing (ScriptedNeuron drives the trainer rows)
  numba                             # plastic[fast]: the fused single step (S2, B4)
)

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install -q --upgrade pip

CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "$TORCH" > "$CONSTRAINTS"

"${PIP[@]}" install -q "$TORCH"
"${PIP[@]}" install -q -c "$CONSTRAINTS" "${IMPORTS[@]}"
# No torchvision: the registry's torchvision wheels link the CUDA torch
# libraries (libc10_cuda.so) and cannot load beside the CPU torch. bindsnet
# imports it only for its dataset and plotting helpers; benchmarks/cases_peers.py
# puts a stub in its place when it is missing (the rows say so).
"${PIP[@]}" install -q --no-deps -r "$ROOT/benchmarks/requirements-peers.txt"
# plastic itself, without touching torch
"${PIP[@]}" install -q --no-deps -e "$ROOT"

# the pin must have held
cd "$ROOT"
"$VENV/bin/python" - "$TORCH" <<'PY'
import os
import sys

import torch
wanted = sys.argv[1].split("==")[1]
if torch.__version__.split("+")[0] != wanted:
    sys.exit(f"torch {torch.__version__} in the benchmark environment, expected {wanted}")
print(f"benchmark environment ready: torch {torch.__version__}")
sys.path.insert(0, os.getcwd())  # the repository root, for benchmarks.cases_peers
from benchmarks.cases_peers import import_status
for name, status in import_status().items():
    print(f"  {name}: {status}")
PY
