"""Pins the explicit source-name -> domain table and its robust matching."""

from __future__ import annotations

import pytest

from m2rl_slime.data.source_domains import EXCLUDE, SourceTable, row_source
from m2rl_slime.errors import ConfigError, UnknownNameError

PREFIXES = ("nano_v3_sft_profiled_", "nano_v3_")


@pytest.mark.parametrize(
    "name, domain",
    [
        ("nano_v3_sft_profiled_dapo17k", "math"),
        ("nano_v3_sft_profiled_skywork_no_omni", "math"),
        ("nano_v3_sft_profiled_stem_mcqa", "science"),
        ("nano_v3_sft_profiled_instruction_following", "if"),
        ("nano_v3_sft_profiled_comp_coding_50tests", "code"),
        ("nano_v3_sft_profiled_workbench", "agent"),
        ("nano_v3_sft_profiled_structured_outputs", EXCLUDE),
        ("taco", "code"),
        ("Code-Contests", "code"),
        ("workplace_assistant", "agent"),
        ("gpqa_diamond_simple_agent", "science"),
        ("math_with_judge", "math"),
    ],
)
def test_blend_and_example_names(name, domain):
    assert SourceTable(strip_prefixes=PREFIXES).resolve(name) == domain


def test_unknown_name_lists_known_ones():
    with pytest.raises(UnknownNameError, match="unknown data source 'nano_v3_sft_profiled_chat'.*dapo17k"):
        SourceTable(strip_prefixes=PREFIXES).resolve("nano_v3_sft_profiled_chat")
    with pytest.raises(UnknownNameError):
        SourceTable().resolve("mathematics")  # a prefix match needs a "_" boundary


def test_overrides_add_and_replace_entries():
    table = SourceTable({"structured_outputs": "if", "my-set": "math", "taco": "exclude"}, PREFIXES)
    assert table.resolve("nano_v3_sft_profiled_structured_outputs") == "if"
    assert table.resolve("my_set_v2") == "math"
    assert table.resolve("taco") == EXCLUDE
    with pytest.raises(ConfigError, match="neither a domain"):
        SourceTable({"x": "chat"})


def test_row_source_walks_columns_in_order():
    cols = ("dataset", "environment_name", "agent_ref.name")
    assert row_source({"dataset": "taco", "environment_name": "w"}, cols) == "taco"
    assert row_source({"dataset": "", "agent_ref": {"name": "gpqa_x"}}, cols) == "gpqa_x"
    assert row_source({"agent_ref": "flat"}, cols) is None
