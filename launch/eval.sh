#!/usr/bin/env bash
# Evaluate an HF checkpoint on a benchmark suite as a slime eval-only run (recipes/eval.yaml).
# Usage: bash launch/eval.sh --set HF_MODEL=DIR --set SUITE=paper9 --set OUT=DIR [--dry-run] [--set KEY=VALUE ...]
# Then: python -m m2rl_slime.eval collect OUT && python -m m2rl_slime.eval summarize OUT (docs/eval.md).
# On several nodes run it on every node with NNODES, NODE_RANK (0 = head), MASTER_ADDR and GPUS_PER_NODE set.
set -euo pipefail
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="${ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
exec "${PYTHON:-python3}" -m m2rl_slime.launch "${ROOT}/recipes/eval.yaml" "$@"
