"""Fixtures of the BFCL tests: the prepared rows of the self-written data, and a bridge on the fake API module."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from m2rl_slime.eval.bfcl.bridge import Bridge
from m2rl_slime.eval.bfcl.prepare import BfclOptions, prepare_bfcl

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def bfcl_rows(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("bfcl") / "rows.jsonl"
    prepare_bfcl(HERE / "data" / "bfcl", out, BfclOptions(categories=("multi_turn_base,multi_turn_miss_func",)))
    return {r["metadata"]["uid"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}


@pytest.fixture
def fake_bridge():
    """Makes bridges run by this interpreter on tests/eval/bfcl_fake_api.py instead of bfcl-eval."""

    def make(**kwargs) -> Bridge:
        return Bridge(python=sys.executable, api_module="bfcl_fake_api", api_path=[HERE], **kwargs)

    return make
