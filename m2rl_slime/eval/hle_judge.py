"""HLE's LLM judge through any OpenAI-compatible chat endpoint: the official protocol, a scorer of its own.

Not a slime hook. The official HLE harness asks a judge model (o3-mini-2025-01-31) whether a response's
final answer matches the reference, with a structured reply: ``extracted_final_answer``, ``reasoning``,
``correct`` (yes/no) and ``confidence`` (0-100, read from the response's ``Confidence:`` line). This
module does the same against any ``/v1/chat/completions`` server (OpenAI, vLLM, SGLang, ...):

- the prompt is `JUDGE_PROMPT` (written for this project after the official judge's behaviour), or the
  user's own text (``--judge-prompt FILE``, e.g. the official one) with the placeholders ``{question}``,
  ``{response}`` and ``{correct_answer}``, filled in one pass (text in a slot is never re-read);
- the reply is requested as JSON schema output (``response_format``); a server that refuses it
  (HTTP 400) is asked again without it, and a reply is read as JSON or as ``key: value`` lines;
- the judged text is the response after its last ``</think>`` (as every verifier grades it); a response
  without one is not sent and counts as wrong (``no_think_close``), as in reward scoring;
- a judge that cannot be reached or answers unusably gives a `Verdict` with ``error`` and no reward:
  never a 0 that looks like a score.

Verdicts are recorded as scorer `SCORER` (``hle_judge``), never mixed with the exact-match scores of the
reward router. `judge` is what ``python -m m2rl_slime.eval score`` calls; `main` judges a samples file
directly (``python -m m2rl_slime.eval.hle_judge --help``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

logger = logging.getLogger(__name__)

SCORER = "hle_judge"
VERSION = "1"
OFFICIAL_JUDGE_MODEL = "o3-mini-2025-01-31"
PLACEHOLDERS = ("question", "response", "correct_answer")
_SLOT = re.compile(r"\{(question|response|correct_answer)\}")
_LINE = re.compile(r"^[ \t*_#>-]*(extracted_final_answer|reasoning|correct|confidence)[ \t*_]*:[ \t]*(.*)$", re.M)
_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})

JUDGE_PROMPT = """\
You are grading a response to an exam question against the question's reference answer.

[question]: {question}

[response]: {response}

[correct_answer]: {correct_answer}

Reply with a JSON object with exactly these keys:

extracted_final_answer: the final answer the [response] gives, copied exactly as it is written there; the \
string "None" if the response gives no clear final answer.

reasoning: why extracted_final_answer does or does not match [correct_answer]. Judge only whether the two \
match: do not solve the question yourself, do not discuss its background, and do not argue for any answer \
other than [correct_answer].

correct: "yes" if extracted_final_answer matches [correct_answer], or differs from it only within a small \
margin of error for a numerical answer; "no" otherwise, that is for any inconsistency, ambiguity or \
non-equivalence, or when the extracted answer is wrong.

confidence: the confidence score, an integer from 0 to 100, that the [response] states for its answer; 100 \
if it states none.
"""

RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "hle_judgement",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "extracted_final_answer": {"type": "string"},
                "reasoning": {"type": "string"},
                "correct": {"type": "string", "enum": ["yes", "no"]},
                "confidence": {"type": "integer"},
            },
            "required": ["extracted_final_answer", "reasoning", "correct", "confidence"],
            "additionalProperties": False,
        },
    },
}


@dataclass(frozen=True, slots=True)
class JudgeSettings:
    """How to reach the judge. `prompt` is a template text (None: `JUDGE_PROMPT`)."""

    url: str
    model: str = OFFICIAL_JUDGE_MODEL
    api_key: str | None = None
    prompt: str | None = None
    concurrency: int = 16
    max_tokens: int = 4096  # the official judge's max_completion_tokens
    temperature: float | None = None  # None: the server's default, as the official judge sends none
    timeout_s: float = 600.0
    retries: int = 4
    backoff_s: float = 1.0
    require_thinking: bool = True

    def validate(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"--judge-url must start with http:// or https://, got {self.url!r}")
        if self.concurrency < 1 or self.retries < 0 or self.timeout_s <= 0 or self.max_tokens < 1:
            raise ConfigError("judge concurrency, max_tokens and timeout must be > 0, retries >= 0")
        check_prompt(self.template)

    @property
    def template(self) -> str:
        return self.prompt if self.prompt is not None else JUDGE_PROMPT

    @property
    def endpoint(self) -> str:
        url = self.url.rstrip("/")
        return url if url.endswith("/chat/completions") else f"{url}/chat/completions"

    @property
    def scorer_version(self) -> str:
        """Names the protocol, the exact prompt text and the judge model (every judged score carries it)."""
        digest = hashlib.sha1(self.template.encode("utf-8")).hexdigest()[:10]
        return f"{SCORER}/{VERSION} prompt:{digest} model:{self.model}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judge's view of one sample. `error` set: not judged (no reward); retry later."""

    correct: bool | None
    reason: str  # an m2rl_slime.rewards.Reason value: ok, wrong, no_think_close, empty_response, parse_error
    extracted_final_answer: str | None = None
    reasoning: str | None = None
    confidence: int | None = None
    error: str | None = None
    structured: bool | None = None  # whether the reply was requested with response_format

    @property
    def reward(self) -> float | None:
        return None if self.error else float(bool(self.correct))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reward": self.reward}


def check_prompt(template: str) -> None:
    """Raise ConfigError unless `template` holds each of ``{question}``, ``{response}``, ``{correct_answer}``."""
    missing = [name for name in PLACEHOLDERS if "{" + name + "}" not in template]
    if missing:
        raise ConfigError(f"judge prompt lacks the placeholder(s) {', '.join('{' + m + '}' for m in missing)}")


def render(template: str, question: str, response: str, correct_answer: str) -> str:
    """Fill the three placeholders in one pass (a response that contains ``{correct_answer}`` stays as it is)."""
    slots = {"question": question, "response": response, "correct_answer": correct_answer}
    return _SLOT.sub(lambda m: slots[m.group(1)], template)


def _confidence(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return int(round(value))
    match = re.match(r"\s*(\d{1,3}(?:\.\d+)?)", str(value)) if isinstance(value, str) else None
    return int(round(float(match.group(1)))) if match else None


def parse_reply(text: str) -> dict[str, Any]:
    """The judgement in a reply: a JSON object (fences or prose around it allowed) or ``key: value`` lines,
    after the judge's own ``</think>`` if it thinks aloud.

    Raises:
        ValueError: no ``correct`` of yes/no could be read.
    """
    fields: dict[str, Any] = {}
    text = text[text.rfind("</think>") + len("</think>") :] if "</think>" in text else text  # a thinking judge
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        try:
            loaded = json.loads(text[start : end + 1])
            fields = loaded if isinstance(loaded, dict) else {}
        except (ValueError, RecursionError):
            fields = {}
    if "correct" not in fields:
        fields = {}
        for key, value in _LINE.findall(text):
            fields.setdefault(key, value.strip(" \t*_"))
    correct = str(fields.get("correct", "")).strip(" \t*_'\"`.").lower()
    if correct not in ("yes", "no"):
        raise ValueError(f"the judge's reply has no 'correct: yes/no' ({text[:120]!r})")
    answer = fields.get("extracted_final_answer")
    return {
        "correct": correct == "yes",
        "extracted_final_answer": None if answer is None else str(answer),
        "reasoning": None if fields.get("reasoning") is None else str(fields["reasoning"]),
        "confidence": _confidence(fields.get("confidence")),
    }


def _question(row: Mapping[str, Any]) -> str:
    users = [m.get("content") for m in row.get("prompt") or () if isinstance(m, Mapping) and m.get("role") == "user"]
    if not users or not isinstance(users[-1], str):
        raise ConfigError(f"HLE row {row.get('metadata', {}).get('uid')!r}: no user message (the question)")
    return users[-1]


def _response_text(sample: Mapping[str, Any] | str) -> Any:
    return sample if isinstance(sample, str) else sample.get("response") if isinstance(sample, Mapping) else None


class _Client:
    def __init__(self, settings: JudgeSettings, session: Any):
        self.settings, self.session = settings, session
        self.gate = asyncio.Semaphore(settings.concurrency)
        self.structured = True  # turned off for good once the server refuses response_format

    def _payload(self, prompt: str, structured: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.settings.model, "messages": [{"role": "user", "content": prompt}],
                                   "max_completion_tokens": self.settings.max_tokens}  # fmt: skip
        if self.settings.temperature is not None:
            payload["temperature"] = self.settings.temperature
        if structured:
            payload["response_format"] = RESPONSE_FORMAT
        return payload

    async def ask(self, prompt: str) -> tuple[str, bool]:
        """(reply text, structured) from the judge; raises RuntimeError once the retries are spent."""
        import aiohttp

        headers = {"Authorization": f"Bearer {self.settings.api_key}"} if self.settings.api_key else {}
        error = "no attempt"
        for attempt in range(self.settings.retries + 1):
            if attempt:
                await asyncio.sleep(min(self.settings.backoff_s * 2 ** (attempt - 1), 30.0))
            structured = self.structured
            try:
                async with (
                    self.gate,
                    self.session.post(
                        self.settings.endpoint, json=self._payload(prompt, structured), headers=headers
                    ) as reply,
                ):
                    body = await reply.text()
                    if reply.status == 400 and structured:
                        self.structured, error = False, f"HTTP 400 with response_format: {body[:200]}"
                        continue
                    if reply.status in _RETRY_STATUS:
                        error = f"HTTP {reply.status}: {body[:200]}"
                        continue
                    if reply.status != 200:
                        raise RuntimeError(f"HTTP {reply.status} from {self.settings.endpoint}: {body[:300]}")
                    message = json.loads(body)["choices"][0]["message"]
                    return str(message.get("content") or ""), structured
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise RuntimeError(f"unreadable reply from {self.settings.endpoint} ({type(exc).__name__})") from None
        raise RuntimeError(f"judge unreachable after {self.settings.retries + 1} attempts ({error})")

    async def verdict(self, row: Mapping[str, Any], sample: Mapping[str, Any] | str) -> Verdict:
        from ..rewards.thinking import final_segment

        response = _response_text(sample)
        if not isinstance(response, str):
            return Verdict(False, "empty_response")
        text, reason = final_segment(response, require_thinking=self.settings.require_thinking)
        if text is None:
            return Verdict(False, reason.value)
        prompt = render(self.settings.template, _question(row), text, str(row.get("label")))
        try:
            reply, structured = await self.ask(prompt)
        except RuntimeError as exc:
            return Verdict(None, "parse_error", error=str(exc))
        try:
            fields = parse_reply(reply)
        except ValueError as exc:
            return Verdict(None, "parse_error", error=str(exc), structured=structured)
        return Verdict(reason="ok" if fields["correct"] else "wrong", structured=structured, **fields)


async def judge(
    rows_and_samples: Iterable[tuple[Mapping[str, Any], Mapping[str, Any] | str]],
    url: str,
    *,
    settings: JudgeSettings | None = None,
    session: Any = None,
    progress: bool = False,
    **overrides: Any,
) -> list[Verdict]:
    """Judge samples of HLE rows; one `Verdict` per pair, in order.

    Args:
        rows_and_samples: (prepared HLE row, sample) pairs; a sample is its record (``response`` is read) or
            the response text.
        url: The judge server (``http://host:port/v1``, or the full ``.../chat/completions``).
        settings: Everything else (`JudgeSettings`); `overrides` replace single fields (``model=...``).
        session: An ``aiohttp.ClientSession`` to reuse (None: one is opened and closed here).
        progress: Show a tqdm bar.

    Raises:
        ConfigError: bad settings or prompt, or a row without its question.
    """
    import aiohttp

    base = settings or JudgeSettings(url)
    settings = JudgeSettings(**{**asdict(base), "url": url, **overrides})
    settings.validate()
    pairs = list(rows_and_samples)
    own = session is None
    if own:
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.timeout_s))
    try:
        client = _Client(settings, session)
        tasks = [asyncio.ensure_future(client.verdict(row, sample)) for row, sample in pairs]
        if progress and tasks:
            from tqdm import tqdm

            with tqdm(total=len(tasks), desc="hle judge", unit="sample") as bar:
                for task in tasks:
                    task.add_done_callback(lambda _t: bar.update(1))
                return list(await asyncio.gather(*tasks))
        return list(await asyncio.gather(*tasks))
    finally:
        if own:
            await session.close()


def calibration_error(confidences: Sequence[float], correct: Sequence[bool], beta: int = 100) -> float | None:
    """HLE's RMS calibration error (in %), computed as the official harness does.

    Confidences (0-100) are sorted, cut into bins of `beta` (the last bin takes the remainder) and the
    squared gap between mean confidence and accuracy is averaged over bins, weighted by size; like the
    official code, the last bin is left out of the sum. None with fewer than `beta` verdicts (the
    official code fails there).
    """
    if len(confidences) != len(correct):
        raise ValueError("confidences and correct differ in length")
    n = len(confidences)
    if n < beta:
        return None
    pairs = sorted(zip((c / 100 for c in confidences), correct), key=lambda p: p[0])
    edges = [(i * beta, (i + 1) * beta) for i in range(n // beta)]
    edges[-1] = (edges[-1][0], n)
    total = 0.0
    for lo, hi in edges[:-1]:
        part = pairs[lo:hi]
        gap = sum(c for c, _ in part) / len(part) - sum(bool(k) for _, k in part) / len(part)
        total += len(part) / n * gap * gap
    return 100 * math.sqrt(total)


# ---- files: python -m m2rl_slime.eval.hle_judge ---------------------------------------------------------


def _jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read jsonl ({exc})") from None


def judge_file(rows_path: Path, samples_path: Path, out_path: Path, settings: JudgeSettings, *,
               progress: bool = False) -> dict[str, Any]:  # fmt: skip
    """Judge every HLE sample of `samples_path` not yet judged in `out_path` (appended; resumable).

    A key (uid, sample_idx) judged without error is never judged again; a failed one is retried and its new
    line appended (the last line of a key counts). Returns the summary over the file.
    """
    rows = {r["metadata"]["uid"]: r for r in _jsonl(rows_path) if r.get("metadata", {}).get("benchmark") == "hle"}
    if not rows:
        raise ConfigError(f"{rows_path}: no prepared HLE rows (metadata.benchmark == 'hle')")
    done = {(v["uid"], v["sample_idx"]) for v in (_jsonl(out_path) if out_path.exists() else []) if not v.get("error")}
    todo = [s for s in _jsonl(samples_path) if s.get("uid") in rows and (s["uid"], s.get("sample_idx")) not in done]
    verdicts = asyncio.run(judge([(rows[s["uid"]], s) for s in todo], settings.url, settings=settings,
                                 progress=progress))  # fmt: skip
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("a", encoding="utf-8") as out:
        for sample, verdict in zip(todo, verdicts):
            record = {"benchmark": "hle", "uid": sample["uid"], "sample_idx": sample.get("sample_idx"),
                      "scorer": SCORER, "scorer_version": settings.scorer_version, "judge_model": settings.model,
                      **verdict.to_dict()}  # fmt: skip
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return summarize(_jsonl(out_path), len(rows))


def summarize(records: Iterable[Mapping[str, Any]], n_items: int) -> dict[str, Any]:
    """Avg@K over items (mean of per-item means) of the judged samples, failures, calibration error."""
    last = {(r["uid"], r["sample_idx"]): r for r in records}
    judged = [r for r in last.values() if not r.get("error")]
    per_item: dict[str, list[float]] = {}
    for r in judged:
        per_item.setdefault(r["uid"], []).append(float(r["reward"]))
    means = [sum(v) / len(v) for v in per_item.values()]
    confident = [r for r in judged if r.get("confidence") is not None and r.get("correct") is not None]
    return {
        "scorer": SCORER, "scorer_version": judged[0]["scorer_version"] if judged else None,
        "n_items": n_items, "items_judged": len(per_item), "samples_judged": len(judged),
        "samples_failed": len(last) - len(judged), "avg": sum(means) / len(means) if means else None,
        "calibration_error": calibration_error([r["confidence"] for r in confident], [r["correct"] for r in confident]),
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Judge a samples file; prints the summary. Exit 1 with one line on bad input."""
    parser = argparse.ArgumentParser(prog="python -m m2rl_slime.eval.hle_judge", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", required=True, type=Path, help="prepared HLE rows (prepare-eval --kind hle)")
    parser.add_argument("--samples", required=True, type=Path, help="samples.jsonl (uid, sample_idx, response)")
    parser.add_argument("--out", required=True, type=Path, help="verdicts jsonl (appended; resumable)")
    parser.add_argument("--judge-url", required=True, help="OpenAI-compatible base URL, e.g. http://host:8000/v1")
    parser.add_argument("--judge-model", default=OFFICIAL_JUDGE_MODEL, help="judge model name (default: official)")
    parser.add_argument(
        "--judge-prompt", type=Path, help="prompt template file with {question} {response} {correct_answer}"
    )
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    parser.add_argument("--temperature", type=float, help="judge temperature (default: the server's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        prompt = None
        if args.judge_prompt is not None:
            try:
                prompt = args.judge_prompt.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"--judge-prompt {args.judge_prompt}: {exc}") from None
        settings = JudgeSettings(args.judge_url, args.judge_model, os.environ.get(args.api_key_env), prompt,
                                 args.concurrency, temperature=args.temperature)  # fmt: skip
        settings.validate()
        summary = judge_file(args.rows, args.samples, args.out, settings, progress=not args.no_progress)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
