"""IFEval's four headline numbers from IF verifier results (not a slime hook).

Google's IFEval (and IFBench, which reuses its report) gives prompt-level and instruction-level
accuracy, each strict and loose: prompt-level counts a prompt when all of its instructions are
followed; instruction-level counts each instruction. The IF verifier's ``details`` carry both verdicts
per instruction (``constraints[i]["strict"]`` / ``["loose"]``), so one scoring pass yields all four.
The M2RL paper reports IFEval strict prompt-level and IFBench prompt-level accuracy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class IFSummary:
    """Counts and accuracies over a set of scored IF prompts.

    Attributes:
        prompts: Prompts seen. A prompt without per-instruction verdicts (empty response, bad row,
            unknown id) counts as not followed at both levels.
        instructions: Instructions in the denominator of the instruction-level figures.
        unscored: Prompts whose instructions could not be judged (bad row or unknown id); their
            instructions are not counted, since the row did not say how many it has.
    """

    prompts: int
    instructions: int
    unscored: int
    prompt_strict: float
    prompt_loose: float
    instruction_strict: float
    instruction_loose: float

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def _details(result: Any) -> Mapping[str, Any]:
    if isinstance(result, Mapping):
        details = result.get("details", result)
    else:
        details = getattr(result, "details", None)
    return details if isinstance(details, Mapping) else {}


def summarize(results: Iterable[Any]) -> IFSummary:
    """IFEval's prompt/instruction x strict/loose accuracies of IF verifier results.

    Args:
        results: `Result` objects, their ``to_dict()`` forms, or bare ``details`` mappings.

    Example:
        >>> from m2rl_slime.rewards.instruction import verify
        >>> meta = {"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
        >>> summarize([verify("a, b", None, meta), verify("a b", None, meta)]).prompt_strict
        0.5
    """
    prompts = instructions = unscored = 0
    prompt_hits = [0, 0]
    instruction_hits = [0, 0]
    for result in results:
        prompts += 1
        details = _details(result)
        constraints = details.get("constraints")
        if not isinstance(constraints, list):
            total = details.get("total")
            if isinstance(total, int) and not isinstance(total, bool):
                instructions += total  # empty response: every instruction unfollowed
            else:
                unscored += 1
            continue
        instructions += len(constraints)
        for k, key in enumerate(("strict", "loose")):
            verdicts = [bool(c.get(key, c.get("followed"))) for c in constraints]
            prompt_hits[k] += all(verdicts)
            instruction_hits[k] += sum(verdicts)

    def ratio(hits: int, total: int) -> float:
        return hits / total if total else 0.0

    return IFSummary(
        prompts=prompts,
        instructions=instructions,
        unscored=unscored,
        prompt_strict=ratio(prompt_hits[0], prompts),
        prompt_loose=ratio(prompt_hits[1], prompts),
        instruction_strict=ratio(instruction_hits[0], instructions),
        instruction_loose=ratio(instruction_hits[1], instructions),
    )
