#!/usr/bin/env bash
# Makes a Python with rembg for `kromactl bench postprocess` (not needed to build or test Kroma):
#   bash packaging/bench/rembg-venv.sh [DIR]   # default: ~/.cache/kroma/rembg-venv
# then: KROMA_REMBG_PYTHON=DIR/bin/python kromactl bench postprocess
# Everything comes from PyPI, pinned (rembg 2.0.86 does not itself depend on onnxruntime).
set -euo pipefail
dir=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/kroma/rembg-venv}
python3 -m venv "$dir"
"$dir/bin/pip" install --quiet --disable-pip-version-check rembg==2.0.86 onnxruntime==1.31.1
echo "KROMA_REMBG_PYTHON=$dir/bin/python"
