"""Fixtures of the agent tests: the workplace sets (`workplaces.py`), configs, and the episode harness.

Every test that uses a set runs once per set present: the repository's own, and NeMo-Gym's when available.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from agent_harness import build_tokenizer, episode_script
from workplaces import REPO, Workplace, nemo_gym

from m2rl_slime.agent.config import AgentConfig
from m2rl_slime.agent.tables import load_db


@pytest.fixture(scope="session")
def wp(example_set: str, example_data: Path) -> Workplace:
    """The workplace set of this run and its facts."""
    return REPO if example_set == "repo" else nemo_gym(example_data)


@pytest.fixture(scope="session")
def wa_dir(wp: Workplace) -> Path:
    return wp.root


@pytest.fixture(scope="session")
def csv_dir(wa_dir: Path) -> str:
    return str(wa_dir / "csv_data")


@pytest.fixture(scope="session")
def db(csv_dir: str):
    return load_db(csv_dir)


@pytest.fixture(scope="session")
def config(csv_dir: str) -> AgentConfig:
    return AgentConfig(csv_dir=csv_dir)


@pytest.fixture(scope="session")
def tasks(wa_dir: Path) -> list[dict]:
    """The set's example tasks in NeMo-Gym's format (prompt, 27 tool schemas, ground truth)."""
    return [json.loads(line) for line in (wa_dir / "example.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def script(wp: Workplace, tasks: list[dict]) -> list[str]:
    """A scripted policy solving task 0 (search, reply, answer)."""
    return episode_script(wp.reply_query, tasks[0])


@pytest.fixture(scope="session")
def rollouts(wp: Workplace, wa_dir: Path) -> list[dict]:
    """The set's example rollouts, each joined with the ground truth derived for it (data/)."""
    lines = (wa_dir / "example_rollouts.jsonl").read_text().splitlines()
    gts = [json.loads(line) for line in wp.rollout_ground_truth.read_text().splitlines()]
    out = []
    for line, gt in zip([line for line in lines if line.strip()], gts, strict=True):
        row = json.loads(line)
        user = next(m["content"] for m in row["responses_create_params"]["input"] if m["role"] == "user")
        assert user == gt["user"], f"{wp.rollout_ground_truth.name} is out of step with example_rollouts.jsonl"
        out.append({**row, "ground_truth": gt["ground_truth"], "category": gt["category"]})
    return out


@pytest.fixture(scope="session")
def demo_rows(repo_root: Path) -> list[dict]:
    """The quick-start demo episodes (examples/agent_demo.jsonl), on the packaged demo database."""
    lines = (repo_root / "examples" / "agent_demo.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="session")
def tool_schemas() -> list[dict]:
    """The 27 tool schemas generated from our tool specs (chat-completions form, as prepared rows carry them)."""
    from m2rl_slime.agent.tools import TOOLS

    return [
        {"type": "function", "function": {k: v for k, v in s.schema().items() if k != "type"}} for s in TOOLS.values()
    ]


@pytest.fixture(scope="session")
def tokenizer(demo_rows: list[dict], tool_schemas: list[dict]):
    """A BPE tokenizer trained in-process on text like the episodes' (prompts, tool schemas, tool outputs)."""
    corpus = [json.dumps(tool_schemas), *(json.dumps(row) for row in demo_rows)]
    corpus += ["<think>\nLook it up.\n</think>\n\n", "Email replied successfully.", "No emails found."] * 20
    return build_tokenizer(corpus)
