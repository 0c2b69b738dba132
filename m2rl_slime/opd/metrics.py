"""Per-domain OPD metrics of one rollout, from what the teacher hook recorded on each sample.

The training loss only sees tensors (slime passes no domain into `batch`), so per-domain figures
come from the rollout side: the hook stores `sample.metadata["opd"]` with the domain, the teacher,
its latency and the reverse KL of the rollout engine's log-probs against the teacher's. A rollout
log function can merge `rollout_metrics(samples)` into what it logs. No slime import.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any


def rollout_metrics(samples: Iterable[Any]) -> dict[str, float]:
    """Aggregate the hook's per-sample records into flat `opd/...` metrics.

    Args:
        samples: slime Samples, or (nested) lists of them; samples the hook did not touch are ignored.

    Returns:
        `opd/<domain>/samples`, `opd/<domain>/teacher_frac`, and where measured
        `opd/<domain>/rollout_reverse_kl` (mean over samples of the loss-masked token mean of
        log pi_rollout - log q), `opd/<domain>/teacher_latency_s`, `opd/<domain>/retried_frac`;
        plus `opd/rollout_reverse_kl` over all domains.
    """
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for sample in _leaves(samples):
        info = (getattr(sample, "metadata", None) or {}).get("opd")
        if isinstance(info, dict) and isinstance(info.get("domain"), str):
            groups[info["domain"]].append(info)
    out: dict[str, float] = {}
    all_kl: list[float] = []
    for domain, infos in sorted(groups.items()):
        scored = [i for i in infos if i.get("teacher") is not None]
        out[f"opd/{domain}/samples"] = float(len(infos))
        out[f"opd/{domain}/teacher_frac"] = len(scored) / len(infos)
        kls = [float(i["rollout_reverse_kl"]) for i in scored if i.get("rollout_reverse_kl") is not None]
        if kls:
            out[f"opd/{domain}/rollout_reverse_kl"] = sum(kls) / len(kls)
            all_kl.extend(kls)
        if scored:
            out[f"opd/{domain}/teacher_latency_s"] = sum(float(i.get("latency_s", 0.0)) for i in scored) / len(scored)
            out[f"opd/{domain}/retried_frac"] = sum(int(i.get("attempts", 1)) > 1 for i in scored) / len(scored)
    if all_kl:
        out["opd/rollout_reverse_kl"] = sum(all_kl) / len(all_kl)
    return out


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    else:
        yield value
