"""Fixtures of the evaluation tests: prepared files, a tokenizer built here, the fake server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "agent"))

from fake_server import FakeServer  # noqa: E402
from world import build_data  # noqa: E402


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return build_data(tmp_path / "data")


@pytest.fixture
def server():
    with FakeServer() as fake:
        yield fake


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """A byte-level BPE tokenizer with a Qwen3-style chat template, trained on the test prompts."""
    from agent_harness import build_tokenizer
    from fake_server import FakeModel

    model = FakeModel()
    corpus = [model.answer(f"[math] What is {a}+{a}?", s) for a in range(5) for s in range(3)]
    corpus += ["[science] Which letter? A) x B) y C) z D) w", "[if] Describe a cat without commas."] * 5
    directory = tmp_path_factory.mktemp("tokenizer")
    build_tokenizer(corpus).save_pretrained(directory)
    return directory
