"""IFEvalG instruction checkers, written from IFEval's and open-instruct's documented behaviour.

Used by `m2rl_slime.rewards.instruction.verify`, the ``if`` domain of the reward router
(``--custom-rm-path m2rl_slime.rewards.reward``). `REGISTRY` maps each of the 54 instruction ids to a
`Checker`; `Doc` holds one response and caches its sentence/word views; segmentation is offline
(`split_sentences`, `tokenize`, `count_words`) and language detection is seeded (`detect_language`).
"""

from .language import detect_language
from .params import ArgumentError, Checker, Param, UnknownRelationError
from .registry import IFEVAL_IDS, IFEVALG_EXTRA_IDS, REGISTRY
from .text import Doc, count_words, split_sentences, tokenize

__all__ = [
    "IFEVALG_EXTRA_IDS",
    "IFEVAL_IDS",
    "REGISTRY",
    "ArgumentError",
    "Checker",
    "Doc",
    "Param",
    "UnknownRelationError",
    "count_words",
    "detect_language",
    "split_sentences",
    "tokenize",
]
