#!/usr/bin/env bash
# Create the peer tools' own virtual environment under .peers/ (ignored by git) and install
# CAREamics and DeepInverse at pinned versions beside a torch/torchvision pair they both accept.
#
#   bash benchmarks/peers/setup.sh          # or: make peers
#
# Why a separate environment: careamics 0.3.5 requires torch>=2.6,<2.14 and torchvision<=0.26.0,
# deepinv 0.5.0 requires torchvision (any); selfdenoise's own .venv holds the CPU wheel torch==2.13.0,
# beside which PyPI's torchvision does not import. torchvision 0.26.0 (the newest careamics accepts)
# requires torch==2.11.0, which satisfies both peers, so ONE environment holds both.
# On x86_64 Linux PyPI's torch wheel is a CUDA build (several GB with its nvidia-* packages); it runs
# on the CPU as well. On aarch64 it is a CPU build.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="${PEERS_VENV:-$ROOT/.peers/venv}"

# Verified together (see README.md in this folder); requirements.lock pins everything else.
TORCH=torch==2.11.0
TORCHVISION=torchvision==0.26.0
CAREAMICS=careamics==0.3.5
DEEPINV=deepinv==0.5.0

"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"peers: careamics 0.3.5 needs Python >= 3.11, this is {sys.version.split()[0]}")
PY

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
fi
PIP=("$VENV/bin/pip" install -q)
if [ -f "$HERE/requirements.lock" ] && [ -z "${PEERS_UNLOCKED:-}" ]; then
    PIP+=(-c "$HERE/requirements.lock")
fi
"${PIP[@]}" "$TORCH" "$TORCHVISION"
"${PIP[@]}" "$TORCH" "$TORCHVISION" "$CAREAMICS" "$DEEPINV"

"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import torch, torchvision, careamics, deepinv  # noqa: F401  (fails loudly if the pair does not import)
print("peers ready:", ", ".join(f"{p} {md.version(p)}" for p in ("torch", "torchvision", "careamics", "deepinv")))
PY
du -sh "$VENV" | awk '{print "peers venv size: " $1 " (" $2 ")"}'
