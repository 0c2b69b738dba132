"""The seccomp filter assembles to valid classic BPF (its effect is tested in test_containment)."""

import struct

import pytest

from m2rl_slime.sandbox import _seccomp


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_filter_is_well_formed(machine):
    code = _seccomp.build_filter(machine)
    assert len(code) % 8 == 0
    instructions = [struct.unpack("<HBBI", code[i : i + 8]) for i in range(0, len(code), 8)]
    for index, (op, jt, jf, _) in enumerate(instructions):
        if op & 0x07 == 0x05:  # a jump stays inside the program
            assert index + 1 + max(jt, jf) < len(instructions)
    returns = {k for op, _, _, k in instructions if op == 0x06}
    assert returns == {0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38, 0x80000000}  # allow, EPERM, ENOSYS, kill
    assert instructions[-1][0] == 0x06  # ends in a return
