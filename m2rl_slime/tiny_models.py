"""Tiny random Qwen3 models for the CPU demo and the tests: the one place their shape and weights are made.

Not a slime hook. Weights are drawn from a local, seeded `torch.Generator`; building the model leaves the
global RNG untouched. torch and transformers are imported on first use.
"""

from __future__ import annotations

from typing import Any

# A 2-layer Qwen3 with every kind of tensor of the real architecture (q/k norms, GQA, tied embeddings).
TINY_QWEN3: dict[str, Any] = {
    "vocab_size": 256,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "tie_word_embeddings": True,
}


def tiny_qwen3(seed: int, *, scale: float = 0.05, **config: Any) -> Any:
    """A random `Qwen3ForCausalLM` in eval mode, N(0, scale^2) weights drawn in parameter order.

    Args:
        seed: Seed of the weights (the same seed and config give the same model).
        scale: Standard deviation of the weights.
        **config: `Qwen3Config` fields overriding `TINY_QWEN3`.
    """
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    with torch.random.fork_rng(devices=[]):  # construction initialises from the global RNG: keep it isolated
        model = Qwen3ForCausalLM(Qwen3Config(**{**TINY_QWEN3, **config}))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * scale)
    return model.eval()
