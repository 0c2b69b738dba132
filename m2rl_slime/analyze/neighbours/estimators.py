"""Monte Carlo estimators of KL(pi_B || pi_M) from tokens sampled from pi_B and scored under both models.

For a response y ~ pi_B and each of its tokens t, with the log-ratio ``r_t = log pi_B(y_t | x, y_<t) -
log pi_M(y_t | x, y_<t)``:

* ``k1_t = r_t``: unbiased for the per-position KL given the prefix; can be negative on a finite sample.
* ``k3_t = (pi_M / pi_B - 1) - log(pi_M / pi_B) = expm1(-r_t) + r_t``: also unbiased (``E_B[pi_M/pi_B] = 1``
  wherever pi_B has its support inside pi_M's), never negative, lower variance when the models are close.

Summed over a sequence, each is an unbiased estimate of the sequence-level KL (chain rule). Two
normalisations are reported for a set of sequences:

* per sequence: the mean over sequences of the sums, standard error over sequences;
* per token (the default of the neighbourhood rule): total over all tokens / number of tokens, the
  token-weighted mean; its standard error treats the sequence as the unit (ratio estimator), since the
  tokens of one sequence are not independent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..uncertainty import MeanSE, mean_se, ratio_se

Estimator = Literal["k1", "k3"]
Normalisation = Literal["token", "sequence"]
ESTIMATORS: tuple[Estimator, ...] = ("k1", "k3")
NORMALISATIONS: tuple[Normalisation, ...] = ("token", "sequence")


@dataclass(frozen=True, slots=True)
class SequenceTerms:
    """One sequence's token count and summed estimator terms."""

    n_tokens: int
    k1: float
    k3: float
    max_abs_log_ratio: float


def sequence_terms(expert_log_probs: Any, multi_log_probs: Any) -> SequenceTerms:
    """Summed k1 and k3 terms of one response from the two models' log-probs of its tokens.

    Raises:
        ValueError: the two arrays differ in length.
    """
    import numpy as np

    e = np.asarray(expert_log_probs, dtype=np.float64)
    m = np.asarray(multi_log_probs, dtype=np.float64)
    if e.shape != m.shape:
        raise ValueError(f"log-prob arrays differ in length: {e.shape} vs {m.shape}")
    if e.size == 0:
        return SequenceTerms(0, 0.0, 0.0, 0.0)
    r = e - m
    k3 = np.expm1(-r) + r
    return SequenceTerms(int(e.size), float(math.fsum(r.tolist())), float(math.fsum(k3.tolist())),
                         float(np.abs(r).max()))  # fmt: skip


@dataclass(frozen=True, slots=True)
class CellEstimate:
    """The four estimates of one (sampler, scorer, domain) cell.

    Attributes:
        per_token / per_sequence: estimator name -> mean and standard error.
    """

    n_sequences: int
    n_tokens: int
    per_token: dict[str, MeanSE]
    per_sequence: dict[str, MeanSE]

    def get(self, estimator: Estimator, normalisation: Normalisation) -> MeanSE:
        return (self.per_token if normalisation == "token" else self.per_sequence)[estimator]

    def to_json(self) -> dict[str, Any]:
        as_dict = lambda m: {"value": m.value, "se": m.se}  # noqa: E731
        return {
            "n_sequences": self.n_sequences,
            "n_tokens": self.n_tokens,
            "mean_length": self.n_tokens / self.n_sequences if self.n_sequences else None,
            "per_token": {k: as_dict(v) for k, v in self.per_token.items()},
            "per_sequence": {k: as_dict(v) for k, v in self.per_sequence.items()},
        }


def estimate(terms: Sequence[SequenceTerms]) -> CellEstimate:
    """Per-token and per-sequence k1 and k3, with standard errors, over the sequences of one cell.

    Raises:
        ValueError: no sequence, or no token at all.
    """
    if not terms:
        raise ValueError("no sequences to estimate from")
    lengths = [float(t.n_tokens) for t in terms]
    per_token = {name: ratio_se([getattr(t, name) for t in terms], lengths) for name in ESTIMATORS}
    per_sequence = {name: mean_se([getattr(t, name) for t in terms]) for name in ESTIMATORS}
    return CellEstimate(len(terms), int(sum(lengths)), per_token, per_sequence)
