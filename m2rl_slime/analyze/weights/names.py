"""Which weight type and layer an HF tensor name belongs to.

The seven projection types of Table 5 are found by their HF names (Qwen2/Qwen3/Llama layout;
``mlp.experts.<e>.<type>_proj`` of MoE layers pools into the same type). Every other tensor inside a
layer (norms, biases, routers) is kept under its name within the layer; tensors outside the layers
(embeddings, the final norm, an untied LM head) are "model" tensors. Both are reported apart from the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ATTENTION = ("q", "k", "v", "o")
FFN = ("gate", "up", "down")
# Table 5's column order.
COLUMNS = ("q", "k", "v", "o", "down", "up", "gate")
GROUPS = {"attention": ATTENTION, "ffn": FFN}

_LAYER = re.compile(r"^(?:.*\.)?layers\.(?P<layer>\d+)\.(?P<rest>.+)$")
_PROJ = (
    re.compile(r"^(?:self_attn|attention)\.(?P<type>[qkvo])_proj\.weight$"),
    re.compile(r"^(?:mlp|feed_forward)\.(?:experts\.\d+\.)?(?P<type>gate|up|down)_proj\.weight$"),
)


@dataclass(frozen=True, slots=True)
class TensorKind:
    """Where a tensor sits: its layer (None outside the layers) and its kind.

    `kind` is one of `COLUMNS` for the projections, the in-layer name (``input_layernorm.weight``)
    for other layer tensors, or the full name for model tensors.
    """

    layer: int | None
    kind: str

    @property
    def projection(self) -> bool:
        return self.kind in COLUMNS


def classify(name: str) -> TensorKind:
    """The layer and kind of an HF tensor name.

    Example:
        >>> classify("model.layers.17.self_attn.q_proj.weight")
        TensorKind(layer=17, kind='q')
        >>> classify("model.embed_tokens.weight")
        TensorKind(layer=None, kind='model.embed_tokens.weight')
    """
    m = _LAYER.match(name)
    if m is None:
        return TensorKind(None, name)
    rest = m.group("rest")
    for pattern in _PROJ:
        p = pattern.match(rest)
        if p:
            return TensorKind(int(m.group("layer")), p.group("type"))
    return TensorKind(int(m.group("layer")), rest)
