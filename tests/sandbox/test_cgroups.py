"""Which cgroup hierarchy the executor uses, on simulated v2/v1 trees, and the real one on this machine."""

from __future__ import annotations

import os

import pytest

from m2rl_slime.sandbox import cgroups


def _v2_tree(root, *, own_procs: str, delegated_at: str | None, controllers: str = "cpu memory pids") -> str:
    """A fake cgroup2 mount with this process in /a/b; returns the mountinfo text pointing at it."""
    for path in ("", "a", "a/b"):
        d = root / path
        d.mkdir(exist_ok=True)
        (d / "cgroup.controllers").write_text(controllers + "\n")
        (d / "cgroup.subtree_control").write_text("memory pids\n" if path == delegated_at else "\n")
        (d / "cgroup.procs").write_text("")
    (root / "a/b/cgroup.procs").write_text(own_procs)
    return f"30 25 0:26 / {root} rw,nosuid - cgroup2 cgroup2 rw\n"


def test_v2_with_a_delegating_ancestor(tmp_path):
    mountinfo = _v2_tree(tmp_path, own_procs="1\n2\n", delegated_at="a")
    found, why = cgroups.detect(mountinfo, "0::/a/b\n")
    assert found is not None and found.version == 2, why
    group = found.groups["unified"]
    assert os.path.dirname(group) == str(tmp_path / "a") and os.path.basename(group).startswith(cgroups.PREFIX)
    slot = found.create_slot(0, pids_max=16)
    assert (tmp_path / "a" / os.path.basename(group) / "s0" / "pids.max").read_text() == "16"
    slot.set_memory(256 << 20)
    assert (tmp_path / "a" / os.path.basename(group) / "s0" / "memory.max").read_text() == str(256 << 20)
    assert slot.procs_files == [os.path.join(group, "s0", "cgroup.procs")]


def test_v2_alone_in_its_cgroup_moves_itself_into_a_leaf(tmp_path):
    mountinfo = _v2_tree(tmp_path, own_procs=f"{os.getpid()}\n", delegated_at=None)
    found, why = cgroups.detect(mountinfo, "0::/a/b\n")
    assert found is not None and found.version == 2, why
    leaves = [p for p in os.listdir(tmp_path / "a/b") if p.endswith("-server")]
    assert len(leaves) == 1 and (tmp_path / "a/b" / leaves[0] / "cgroup.procs").read_text() == str(os.getpid())
    assert (tmp_path / "a/b/cgroup.subtree_control").read_text() == "+memory +pids"


def test_v2_shared_with_other_processes_and_no_v1_gives_none_with_reasons(tmp_path):
    mountinfo = _v2_tree(tmp_path, own_procs="1\n2\n", delegated_at=None)
    found, why = cgroups.detect(mountinfo, "0::/a/b\n")
    assert found is None and "holds other processes" in why and "cgroup v1" in why


def test_v2_without_the_memory_controller_falls_back_to_v1(tmp_path):
    v2 = tmp_path / "unified"
    v2.mkdir()
    mountinfo = _v2_tree(v2, own_procs="1\n", delegated_at="a", controllers="hugetlb")
    for controller in ("memory", "pids"):
        (tmp_path / controller / "job").mkdir(parents=True)
        mountinfo += f"31 25 0:27 / {tmp_path / controller} rw - cgroup cgroup rw,{controller}\n"
    found, why = cgroups.detect(mountinfo, "0::/a/b\n5:memory:/job\n6:pids:/job\n")
    assert found is not None and found.version == 1, why
    assert set(found.groups) == {"memory", "pids"}  # no cpuacct: CPU time then comes from the process
    assert all(os.path.dirname(g) == str(tmp_path / c / "job") for c, g in found.groups.items())


def test_stale_groups_of_dead_servers_are_removed(tmp_path):
    dead = tmp_path / f"{cgroups.PREFIX}999999999-abc"
    (dead / "s0").mkdir(parents=True)
    alive = tmp_path / f"{cgroups.PREFIX}1-abc"  # pid 1 is alive
    alive.mkdir()
    assert cgroups.remove_stale([str(tmp_path)]) == 1
    assert not dead.exists() and alive.exists()


def test_this_machine():
    """Whatever this machine offers is found and cleaned up again (as root)."""
    if os.geteuid() != 0:
        pytest.skip("creating cgroups needs root")
    found, why = cgroups.detect()
    if found is None:
        pytest.skip(f"no usable cgroup hierarchy here: {why}")
    try:
        slot = found.create_slot(0, pids_max=8)
        slot.set_memory(64 << 20)
        slot.set_memory(128 << 20)
        assert slot.cpu_ns() in (0, None) and slot.oom_kills() == 0
    finally:
        found.close()
    assert not any(os.path.exists(g) for g in found.groups.values())
