"""Shared pytest fixtures."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


EXAMPLES = REPO_ROOT / "tests" / "examples" / "data"


def shared_data_dir() -> Path | None:
    """NeMo-Gym's example rows, when a copy is available: ``$M2RL_SHARED_DATA``, else a ``shared/data``
    directory next to the repository. Optional: every test runs on the repository's own rows without it."""
    env = os.environ.get("M2RL_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path
    return None


def example_sets() -> dict[str, Path]:
    """Row sets in NeMo-Gym's layout (``nemo_gym_examples/``, ``workplace_assistant/``): ``repo``, the
    repository's own (``tests/examples/data``, always), and ``nemo_gym`` when `shared_data_dir` finds it."""
    sets = {"repo": EXAMPLES}
    shared = shared_data_dir()
    if shared is not None:
        sets["nemo_gym"] = shared
    return sets


EXAMPLE_SETS = example_sets()


@pytest.fixture(scope="session", params=sorted(EXAMPLE_SETS))
def example_set(request) -> str:
    """The name of the row set a test runs on (the test runs once per set present)."""
    return request.param


@pytest.fixture(scope="session")
def example_data(example_set: str) -> Path:
    """The directory of the row set (see `example_sets`)."""
    return EXAMPLE_SETS[example_set]


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory) -> Path:
    """A word-level tokenizer (every whitespace/punctuation piece is one token) with a tools-aware chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(vocab={"[UNK]": 0, "[PAD]": 1, "[EOS]": 2}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]")
    tok.chat_template = (
        "{% if tools %}<tools>{% for t in tools %}{{ t | tojson }}{% endfor %}</tools>\n{% endif %}"
        "{% for m in messages %}<{{ m.role }}> {{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    path = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


_private_pool_memory = itertools.count(2300)  # a distinct worker_memory_mb gives each such router its own pool


@pytest.fixture
def private_router(monkeypatch):
    """Build a `Router` whose verifier pool is its own and whose workers can import from extra directories.

    Pool workers are fresh interpreters: a verifier module written by a test is importable there only when
    its directory is on PYTHONPATH before the pool starts. The pools are closed after the test.
    """
    from m2rl_slime.rewards.config import RewardConfig
    from m2rl_slime.rewards.router import Router

    routers = []

    def build(*paths: Path, **settings) -> Router:
        extra = [str(p) for p in paths]
        for path in extra:
            monkeypatch.syspath_prepend(path)
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([*extra, *filter(None, [os.environ.get("PYTHONPATH")])]))
        settings = {"workers": 1, "deadline_s": 10.0, "worker_memory_mb": next(_private_pool_memory), **settings}
        router = Router(RewardConfig(**settings))
        routers.append(router)
        return router

    yield build
    for router in routers:
        router.pool.close()
