#!/usr/bin/env bash
# Multi-teacher on-policy distillation from the five RL experts (paper settings).
# Usage: bash launch/opd.sh [--dry-run] [--emit-script PATH] [--set KEY=VALUE ...]
# On several nodes run it on every node with NNODES, NODE_RANK (0 = head), MASTER_ADDR and GPUS_PER_NODE set.
# Paths come from DATA_DIR, CKPT_DIR, ... (see recipes/opd.yaml and docs/launch.md). Kills nothing.
set -euo pipefail
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="${ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
exec "${PYTHON:-python3}" -m m2rl_slime.launch "${ROOT}/recipes/opd.yaml" "$@"
