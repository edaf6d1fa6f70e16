#!/usr/bin/env bash
# Install the CPU build of torch==2.13.0 into the interpreter given as $1.
# Plain `pip install torch` on Linux pulls several GB of CUDA wheels, so we never let a
# dependency resolve torch on its own: it is installed first, from a local wheel folder when
# pip is configured with one that holds the CPU build, else from PyTorch's CPU index.
set -euo pipefail
py="${1:-python3}"
if "$py" -c 'import torch, sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' 2>/dev/null; then
    exit 0
fi
links=$("$py" -m pip config list 2>/dev/null | sed -n "s/.*find-links='\(.*\)'/\1/p" | head -n1)
if [ -n "$links" ] && ls "$links"/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
    "$py" -m pip install --quiet "torch==2.13.0"
else
    "$py" -m pip install --quiet "torch==2.13.0+cpu" --extra-index-url https://download.pytorch.org/whl/cpu
fi
