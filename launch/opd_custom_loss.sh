#!/usr/bin/env bash
# MT-OPD with m2rl_slime.opd.opd_loss (custom-loss mode).
# Usage: bash launch/opd_custom_loss.sh [--dry-run] [--emit-script PATH] [--set KEY=VALUE ...]
# On several nodes run it on every node with NNODES, NODE_RANK (0 = head), MASTER_ADDR and GPUS_PER_NODE set.
# Paths come from DATA_DIR, CKPT_DIR, ... (see recipes/opd_custom_loss.yaml and docs/launch.md). Kills nothing.
set -euo pipefail
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="${ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
exec "${PYTHON:-python3}" -m m2rl_slime.launch "${ROOT}/recipes/opd_custom_loss.yaml" "$@"
