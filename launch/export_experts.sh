#!/usr/bin/env bash
# Export the SFT model and the five single-domain RL experts from Megatron torch_dist to HF, for weight
# merging and as the MT-OPD teachers: $CKPT_DIR/sft_hf and $CKPT_DIR/rl_<domain>_hf (latest iteration of
# each run). Extra arguments go to every conversion (e.g. --dry-run, --force, --set CKPT_DIR=...).
# Usage: bash launch/export_experts.sh [--dry-run] [--force] [--set KEY=VALUE ...]
set -euo pipefail
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="${ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
for run in sft rl_math rl_code rl_science rl_if rl_agent; do
    "${PYTHON:-python3}" -m m2rl_slime.launch convert torch-dist-to-hf "${ROOT}/recipes/${run}.yaml" "$@"
done
