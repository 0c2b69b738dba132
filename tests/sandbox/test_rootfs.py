"""The minimal root's plan: system dirs, interpreter prefixes at their own paths, symlink chains, skeletons."""

from __future__ import annotations

import os
import sys

import pytest

from m2rl_slime.sandbox import _rootfs


def test_walk_links_records_every_hop(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "python").write_text("")
    (tmp_path / "dir-link").symlink_to(tmp_path / "real")
    (tmp_path / "py").symlink_to("dir-link/python")
    links: dict[str, str] = {}
    assert _rootfs.walk_links(str(tmp_path / "py"), links) == str(tmp_path / "real" / "python")
    assert links == {str(tmp_path / "py"): "dir-link/python", str(tmp_path / "dir-link"): str(tmp_path / "real")}


def test_plan_exposes_only_what_is_needed(tmp_path):
    venv = tmp_path / "project" / ".venv"
    (venv / "bin").mkdir(parents=True)
    (tmp_path / "project" / "secret.txt").write_text("answer key")
    link_home = tmp_path / "home"
    link_home.mkdir()
    (link_home / "python").symlink_to(venv / "bin")
    plan = _rootfs.plan_root([str(venv), str(link_home / "python")])
    assert str(venv) in plan["binds"] and str(tmp_path / "project") not in plan["binds"]
    assert [str(link_home / "python"), str(venv / "bin")] in [list(pair) for pair in plan["links"]]
    assert all(not b.startswith(("/home", "/run", "/var", "/srv")) for b in plan["binds"])
    if str(tmp_path).startswith("/tmp/"):  # under a writable directory: its top entry is kept by cleanup
        assert plan["keep"]["/tmp"] == [str(tmp_path).split("/")[2]]


def test_plan_for_this_interpreter_covers_its_prefixes():
    plan = _rootfs.plan_root([sys.executable, *_rootfs.interpreter_prefixes(sys.executable)])
    real = os.path.realpath(sys.prefix)
    assert any(real == b or real.startswith(b + "/") for b in plan["binds"])
    assert "null" in plan["devices"]


def test_paths_under_proc_or_sys_are_refused():
    with pytest.raises(OSError, match="cannot expose"):
        _rootfs.plan_root(["/proc/cpuinfo"])
