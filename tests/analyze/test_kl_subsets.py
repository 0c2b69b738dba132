"""``analyze subsets``: the Table-6 merge recipes load with the merge loader, keep the template's settings
and unexpanded paths, and follow the neighbourhoods of a kl.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m2rl_slime.analyze.cli import main
from m2rl_slime.merge.config import build_config, load_recipe

REPO = Path(__file__).resolve().parents[2]
TIES = REPO / "recipes" / "merge" / "ties.yaml"


def kl_json(path: Path, neighbours: dict[str, list[str]]) -> Path:
    path.write_text(json.dumps({"analysis": "kl", "multis": ["rl_multi"],
                                "matrices": {"rl_multi": {"neighbours": neighbours}}}))  # fmt: skip
    return path


def test_every_pair_of_the_template(tmp_path, monkeypatch):
    out = tmp_path / "pairs"
    assert main(["subsets", f"--template={TIES}", f"--out={out}"]) == 0
    index = json.loads((out / "subsets.json").read_text())
    assert len(index["recipes"]) == 10  # five experts: C(5, 2) pairs
    first = index["recipes"][0]
    assert first["file"] == "ties_math+code.yaml" and first["for_domains"] == ["math", "code"]
    text = (out / first["file"]).read_text()
    assert "${MATH_HF:-checkpoints/rl_math_hf}" in text and "Table-6 ablation" in text
    monkeypatch.setenv("SFT_HF", "/ckpt/sft")
    fields, warnings = load_recipe(out / first["file"])
    config = build_config(fields, "pair")
    assert not warnings and config.method == "ties" and config.base == "/ckpt/sft"
    assert [e.name for e in config.experts] == ["math", "code"]
    assert dict(config.params) == {"density": 0.2, "trim_scope": "model", "lambda": 1.0} and config.dtype == "bf16"
    assert any(c.startswith("python -m m2rl_slime.merge --config") for c in index["commands"])


def test_neighbour_pairs_and_neighbourhoods_from_kl(tmp_path):
    kl = kl_json(tmp_path / "kl.json", {"math": ["code", "science"], "code": ["math"], "science": [], "if": [],
                                        "agent": ["if"]})  # fmt: skip
    out = tmp_path / "pairs"
    assert main(["subsets", f"--template={TIES}", f"--out={out}", f"--kl={kl}", "--neighbourhood"]) == 0
    index = json.loads((out / "subsets.json").read_text())
    pairs = [tuple(r["experts"]) for r in index["recipes"] if len(r["experts"]) == 2]
    assert pairs == [("math", "code"), ("math", "science"), ("if", "agent")]
    assert index["recipes"][0]["neighbour"] == {"math": True, "code": True}
    hoods = [r for r in index["recipes"] if len(r["experts"]) > 2]
    assert [(r["experts"], r["for_domains"]) for r in hoods] == [(["math", "code", "science"], ["math"])]
    assert (out / "ties_hood_math+code+science.yaml").is_file()


def test_bad_input(tmp_path, capsys):
    assert main(["subsets", f"--template={tmp_path / 'none.yaml'}", f"--out={tmp_path}"]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["subsets", f"--template={TIES}", f"--out={tmp_path}", "--domains=math,chess"]) == 2
    assert "chess" in capsys.readouterr().err
    assert main(["subsets", f"--template={TIES}", f"--out={tmp_path}", "--neighbourhood"]) == 2
    assert "--kl" in capsys.readouterr().err


@pytest.mark.parametrize("domains", ["math,code", "code,math"])
def test_domains_keep_template_order(tmp_path, domains):
    out = tmp_path / "pairs"
    assert main(["subsets", f"--template={TIES}", f"--out={out}", f"--domains={domains}"]) == 0
    assert [r["file"] for r in json.loads((out / "subsets.json").read_text())["recipes"]] == ["ties_math+code.yaml"]
