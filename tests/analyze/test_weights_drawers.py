"""The figure drawers: child processes that import matplotlib during the analysis and draw at the end."""

from __future__ import annotations

import os

import pytest

from m2rl_slime.analyze.weights import WeightsOptions, run_weights
from m2rl_slime.analyze.weights.plot import Drawers, plot
from m2rl_slime.errors import ConfigError

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def analysed(family, tmp_path_factory):
    """A finished analysis (numbers only) of the random family."""
    base, experts = family
    out = tmp_path_factory.mktemp("weights")
    run_weights(str(base), [(n, str(p)) for n, p in experts.items()], out, WeightsOptions(progress=False), False)
    return out


def _children() -> set[int]:
    mine = str(os.getpid())
    out = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[1] == mine:
                        out.add(int(pid))
            except OSError:
                continue
    return out


def test_children_draw_every_figure_and_are_gone_afterwards(analysed, tmp_path):
    before = _children()
    with Drawers(2) as drawers:
        assert len(_children() - before) == 2
        files = drawers.draw(analysed / "weights.json", tmp_path)
    assert _children() == before
    (tmp_path / "here").mkdir()
    want = {p.name for p in plot(analysed / "weights.json", tmp_path / "here")}
    assert want == {"layers.png", "fig3_cosine.png", "fig3_cosine_projected.png", "fig3_jaccard.png"}
    assert {f.name for f in files} == want
    assert all((tmp_path / name).stat().st_size > 1000 for name in want)


@pytest.mark.parametrize("python", ["/nonexistent/python3", "/bin/false", "/bin/echo"])
def test_children_that_cannot_start_or_answer_fall_back_to_drawing_here(analysed, tmp_path, python):
    """No interpreter, a child that exits at once, a child that answers garbage."""
    before = _children()
    with Drawers(2, python=python) as drawers:
        files = drawers.draw(analysed / "weights.json", tmp_path)
    assert len(files) == 4 and all(f.is_file() for f in files)
    assert _children() == before


def test_a_bad_weights_file_is_a_one_line_error_and_no_child_is_left(tmp_path):
    before = _children()
    bad = tmp_path / "weights.json"
    bad.write_text('{"analysis": "kl"}')
    with Drawers(2) as drawers, pytest.raises(ConfigError, match="not the output of analyze weights"):
        drawers.draw(bad, tmp_path)
    assert _children() == before


def test_closing_without_drawing_stops_the_children():
    before = _children()
    with Drawers(2):
        pass
    assert _children() == before


def test_run_weights_uses_the_drawers_for_big_inputs(family, tmp_path, monkeypatch):
    """Above `DRAWERS_FROM_BYTES` of input the figures come from the child processes; the files are the
    same set as drawn in-process, and no child outlives the run."""
    from m2rl_slime.analyze.weights import analysis

    base, experts = family
    args = (str(base), [(n, str(p)) for n, p in experts.items()])
    started = []
    real = analysis.Drawers

    def spy(*a, **k):
        started.append(1)
        return real(*a, **k)

    monkeypatch.setattr(analysis, "Drawers", spy)
    before = _children()
    inline = run_weights(*args, tmp_path / "inline", WeightsOptions(progress=False))
    assert not started
    monkeypatch.setattr(analysis, "DRAWERS_FROM_BYTES", 0)
    drawn = run_weights(*args, tmp_path / "drawn", WeightsOptions(progress=False))
    assert started == [1]
    assert sorted(f.name for f in drawn.figures) == sorted(f.name for f in inline.figures)
    assert len(drawn.figures) == 4 and all(f.is_file() for f in drawn.figures)
    assert _children() == before


def test_an_interrupted_run_leaves_no_drawer_behind(family, tmp_path, monkeypatch):
    from m2rl_slime.analyze.weights import analysis, engine

    def interrupted(self, todo, done):
        raise KeyboardInterrupt

    monkeypatch.setattr(analysis, "DRAWERS_FROM_BYTES", 0)
    monkeypatch.setattr(engine.Streamer, "run", interrupted)
    base, experts = family
    before = _children()
    with pytest.raises(KeyboardInterrupt):
        run_weights(
            str(base), [(n, str(p)) for n, p in experts.items()], tmp_path / "o", WeightsOptions(progress=False)
        )
    assert _children() == before
