"""Tiny Qwen3-shaped checkpoints for the merge tests (random weights, sparse RL-like expert deltas)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

EXPERTS = ("math", "code", "science")


def qwen3_config(vocab: int = 1536, tie: bool = True):
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=128,
        tie_word_embeddings=tie,
    )


def param_shapes(config) -> dict[str, tuple[int, ...]]:
    """Qwen3ForCausalLM parameter names and shapes for `config` (test_core checks them against transformers)."""
    h, i, hd = config.hidden_size, config.intermediate_size, config.head_dim
    q, kv = config.num_attention_heads * hd, config.num_key_value_heads * hd
    shapes = {"model.embed_tokens.weight": (config.vocab_size, h)}
    for n in range(config.num_hidden_layers):
        p = f"model.layers.{n}."
        shapes.update(
            {
                p + "input_layernorm.weight": (h,),
                p + "self_attn.q_proj.weight": (q, h),
                p + "self_attn.k_proj.weight": (kv, h),
                p + "self_attn.v_proj.weight": (kv, h),
                p + "self_attn.o_proj.weight": (h, q),
                p + "self_attn.q_norm.weight": (hd,),
                p + "self_attn.k_norm.weight": (hd,),
                p + "post_attention_layernorm.weight": (h,),
                p + "mlp.gate_proj.weight": (i, h),
                p + "mlp.up_proj.weight": (i, h),
                p + "mlp.down_proj.weight": (h, i),
            }
        )
    shapes["model.norm.weight"] = (h,)
    if not config.tie_word_embeddings:
        shapes["lm_head.weight"] = (config.vocab_size, h)
    return shapes


def base_weights(shapes: dict[str, tuple[int, ...]], seed: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            out[name] = (1.0 + 0.1 * torch.randn(shape, generator=g)).to(dtype)
        else:
            out[name] = (0.05 * torch.randn(shape, generator=g)).to(dtype)
    return out


def expert_weights(
    base: dict[str, torch.Tensor], seed: int, changed: float = 0.4, scale: float = 0.01
) -> dict[str, torch.Tensor]:
    """base + a sparse delta: `changed` of the elements move, by mixed magnitudes (some below bf16 resolution)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, b in base.items():
        mask = torch.rand(b.shape, generator=g) < changed
        mag = scale * torch.exp(2.5 * torch.randn(b.shape, generator=g)).clamp(max=20.0)
        delta = mag * torch.randn(b.shape, generator=g) * mask
        out[name] = (b.float() + delta).to(b.dtype)
    return out


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], config, shards: int = 1) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(path)
    (path / "generation_config.json").write_text(json.dumps({"do_sample": False}))
    (path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 128}))
    names = list(tensors)
    if shards == 1:
        save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
        return path
    weight_map = {}
    per = -(-len(names) // shards)
    for i in range(shards):
        part = names[i * per : (i + 1) * per]
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        save_file({n: tensors[n] for n in part}, str(path / fname), metadata={"format": "pt"})
        weight_map.update({n: fname for n in part})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    (path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    return path


def make_family(
    root: Path, shards: int = 1, dtype: torch.dtype = torch.bfloat16, experts=EXPERTS, tie: bool = True
) -> tuple[Path, dict[str, Path]]:
    """Write a base and its experts under root; return (base dir, {expert: dir})."""
    config = qwen3_config(tie=tie)
    shapes = param_shapes(config)
    base = base_weights(shapes, 0, dtype)
    base_dir = save_checkpoint(root / "base", base, config, shards)
    dirs = {}
    for i, name in enumerate(experts):
        dirs[name] = save_checkpoint(root / name, expert_weights(base, 100 + i), config, shards)
    return base_dir, dirs


def ulp_expert(base: dict[str, torch.Tensor], seed: int, changed: float = 0.5) -> dict[str, torch.Tensor]:
    """base moved by -2..2 steps of its last stored bit on `changed` of the elements: RL-sized updates whose
    deltas tie exactly across experts and positions."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, b in base.items():
        steps = torch.randint(-2, 3, b.shape, generator=g, dtype=torch.int16)
        steps *= (torch.rand(b.shape, generator=g) < changed).to(torch.int16)
        out[name] = (b.view(torch.int16) + steps).view(b.dtype)
    return out


def make_ulp_family(root: Path, experts=("math", "code", "science", "if", "agent")) -> tuple[Path, dict[str, Path]]:
    """A bf16 base and experts whose deltas are a few ulps (see `ulp_expert`)."""
    config = qwen3_config()
    base = base_weights(param_shapes(config), 0, torch.bfloat16)
    base_dir = save_checkpoint(root / "base", base, config)
    return base_dir, {n: save_checkpoint(root / n, ulp_expert(base, 200 + i), config) for i, n in enumerate(experts)}
