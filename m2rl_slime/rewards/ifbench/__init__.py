"""IFBench instruction checkers (allenai/IFBench's 58 out-of-distribution constraints), offline.

Used by `m2rl_slime.rewards.instruction.verify` next to the IFEvalG checkers of `..ifeval` (the two id
sets are disjoint). The checkers share `..ifeval`'s `Checker`/`Param` validation and `Doc`; IFBench's
own text views (IFEval's rule-based sentence splitter, Treebank-style tokens) live in `text`, and the
word resources that IFBench takes from NLTK data (stopwords, POS tags, syllables, emoji) in `lexicon`
and `verbs`. No NLTK, spaCy or download is involved.
"""

from .registry import IFBENCH_IDS, IFBENCH_REGISTRY

__all__ = ["IFBENCH_IDS", "IFBENCH_REGISTRY"]
