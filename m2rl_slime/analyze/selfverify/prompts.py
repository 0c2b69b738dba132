"""Judge prompts (``prompts.yaml``, shipped with the package) and the parsing of verdicts.

Two modes:

* ``outcome``: the judge sees the task and the final answer only (the response after its last
  ``</think>``) and must end with ``\\boxed{Correct}`` or ``\\boxed{Incorrect}`` (a GenRM-style yes/no);
* ``process``: the judge sees the task and the whole response (reasoning, then the answer) split into
  paragraphs at blank lines, tagged ``<paragraph_i>`` from 0, and must return in ``\\boxed{}`` the index of
  the earliest erroneous paragraph or -1 (ProcessBench-style critique); -1 means "correct", an index in
  range means "incorrect".

A verdict is read from the last ``\\boxed{...}`` of the judge's final answer (after its own ``</think>``).
Anything else is unparsable and counts as a wrong verdict (fail closed): no box, an unfinished thinking
block, a value that is neither verdict, an index out of range. All parsing is linear in the reply length.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from ...errors import ConfigError, UnknownNameError

Mode = Literal["outcome", "process"]
MODES: tuple[Mode, ...] = ("outcome", "process")
PLACEHOLDERS = {"outcome": ("question", "answer", "criterion"), "process": ("question", "paragraphs", "criterion")}
_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_INT = re.compile(r"[+-]?\d{1,9}")
_WRAPPERS = ("\\text{", "\\textbf{", "\\mathrm{", "\\mbox{")


@dataclass(frozen=True, slots=True)
class Templates:
    """The judge prompts: one template per mode, one criterion per domain (``default`` for the others)."""

    version: int
    outcome: str
    process: str
    criteria: Mapping[str, str]
    sha: str

    def criterion(self, domain: str | None) -> str:
        from ...rewards.registry import canonical_domain

        try:
            name = canonical_domain(domain) if domain else "default"
        except UnknownNameError:
            name = "default"
        return self.criteria.get(name, self.criteria["default"])


def load_templates(path: str | Path | None = None) -> Templates:
    """The shipped templates, or another file of the same shape.

    Raises:
        ConfigError: unreadable, a missing key or criterion ``default``, or a template without its placeholders.
    """
    import hashlib

    import yaml

    if path is None:
        text = resources.files(__package__).joinpath("prompts.yaml").read_text(encoding="utf-8")
        where = "the shipped prompts.yaml"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--templates {path}: cannot read ({exc.strerror or exc})") from None
        where = str(path)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, Mapping) or not all(k in doc for k in ("version", "criteria", *MODES)):
        raise ConfigError(f"{where}: needs version, criteria, outcome and process")
    criteria = doc["criteria"]
    if not isinstance(criteria, Mapping) or "default" not in criteria:
        raise ConfigError(f"{where}: criteria must map domains to texts and include `default`")
    for mode in MODES:
        names = {m.group("named") or m.group("braced") for m in string.Template.pattern.finditer(doc[mode])}
        missing = [p for p in PLACEHOLDERS[mode] if p not in names]
        if missing:
            raise ConfigError(f"{where}: the {mode} template lacks ${', $'.join(missing)}")
    sha = hashlib.sha1(text.encode()).hexdigest()[:12]
    return Templates(int(doc["version"]), doc["outcome"], doc["process"], dict(criteria), sha)


def paragraphs(reasoning: str | None, content: str | None) -> list[str]:
    """The response split at blank lines (reasoning first, then the answer), empty pieces dropped."""
    parts = []
    for text in (reasoning, content):
        if text:
            parts += [p.strip() for p in _BLANK_LINES.split(text) if p.strip()]
    return parts


def render(templates: Templates, mode: Mode, question: str, domain: str | None, *, reasoning: str | None,
           content: str | None) -> tuple[str, int]:  # fmt: skip
    """The judge prompt of one trajectory and, in process mode, its number of paragraphs (else 0)."""
    criterion = templates.criterion(domain)
    if mode == "outcome":
        text = string.Template(templates.outcome).substitute(
            question=question, answer=(content or "").strip() or "(no answer)", criterion=criterion
        )
        return text, 0
    parts = paragraphs(reasoning, content) or ["(empty response)"]
    tagged = "\n\n".join(f"<paragraph_{i}>\n{p}\n</paragraph_{i}>" for i, p in enumerate(parts))
    text = string.Template(templates.process).substitute(question=question, paragraphs=tagged, criterion=criterion)
    return text, len(parts)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A parsed judge reply: ``correct``/``incorrect``, or None with `error` (unparsable)."""

    verdict: Literal["correct", "incorrect"] | None
    index: int | None = None
    error: str | None = None


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (nested braces balanced), or None. Linear in len(text)."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 1, start + len("\\boxed{")
    for pos in range(begin, len(text)):
        char = text[pos]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[begin:pos]
    return None


def _unwrap(value: str) -> str:
    value = value.strip().rstrip(".").strip()
    changed = True
    while changed:
        changed = False
        for wrapper in _WRAPPERS:
            if value.startswith(wrapper) and value.endswith("}"):
                value, changed = value[len(wrapper) : -1].strip(), True
    return value


def parse_verdict(mode: Mode, reply: str, n_paragraphs: int = 0) -> Verdict:
    """Read the verdict of a judge's final answer (see the module docstring)."""
    if reply.lstrip().startswith("<think>"):
        return Verdict(None, error="unfinished_thinking")
    boxed = last_boxed(reply)
    if boxed is None:
        return Verdict(None, error="no_boxed")
    value = _unwrap(boxed)
    if mode == "outcome":
        word = value.lower()
        if word in ("correct", "incorrect"):
            return Verdict(word)  # type: ignore[arg-type]
        return Verdict(None, error="not_correct_or_incorrect")
    if not _INT.fullmatch(value):
        return Verdict(None, error="not_an_index")
    index = int(value)
    if index == -1:
        return Verdict("correct", index)
    if 0 <= index < n_paragraphs:
        return Verdict("incorrect", index)
    return Verdict(None, index, error="index_out_of_range")


@functools.lru_cache(maxsize=1)
def shipped() -> Templates:
    return load_templates(None)


def describe(templates: Templates) -> dict[str, Any]:
    return {"version": templates.version, "sha": templates.sha}
