#!/usr/bin/env bash
# The README walkthrough: start kromad, create the example project, look at it, stop.
# Uses its own temporary socket and data dir unless KROMA_SOCKET / KROMA_DATA_DIR are set, so it
# never touches a daemon you already run.
set -euo pipefail

scratch=$(mktemp -d)
trap 'kromactl daemon stop >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT
export KROMA_SOCKET=${KROMA_SOCKET:-$scratch/kromad.sock}
export KROMA_DATA_DIR=${KROMA_DATA_DIR:-$scratch/data}

set -x
kromactl daemon start
kromactl project create "Night Harbor" --description "A rainy port city, drawn in ink and teal washes"
kromactl project list
kromactl project show night-harbor
kromactl daemon status
kromactl events
kromactl daemon stop
