"""Event decoding: simple values, scalar tensors of every numeric encoding, what is not a scalar, damage."""

from __future__ import annotations

import struct

import pytest
from tfevents import (
    event,
    key,
    ld,
    record,
    scalars_event,
    simple_value,
    tensor,
    tensor_value,
    vint,
    write_events,
)

from m2rl_slime.analyze.curves.events import event_scalars, find_event_files, read_event_file, tensor_scalar


def _one(values, step=3):
    return event_scalars(event(step, values), {})


def test_simple_values_with_their_step():
    got = _one([simple_value("rollout/raw_reward", 0.25), simple_value("eval/aime24", 0.5)], step=40)
    assert got == [("rollout/raw_reward", 40, 0.25), ("eval/aime24", 40, 0.5)]


def test_negative_steps_and_unknown_fields_are_decoded_or_skipped():
    extra = ld(10, b"source metadata") + vint(99, 12345) + key(98, 5) + b"\0\0\0\0"
    got = event_scalars(event(-2, [simple_value("x", 1.5)], extra=extra), {})
    assert got == [("x", -2, 1.5)]


@pytest.mark.parametrize(
    ("proto", "expected"),
    [
        (tensor(1, fields=ld(5, struct.pack("<f", 0.75))), 0.75),  # packed float_val
        (tensor(1, fields=key(5, 5) + struct.pack("<f", 0.5)), 0.5),  # unpacked float_val
        (tensor(2, fields=ld(6, struct.pack("<d", 0.1))), 0.1),  # double_val
        (tensor(3, fields=vint(7, 42)), 42.0),  # int_val
        (tensor(9, fields=ld(10, b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01")), -2.0),  # packed int64_val
        (tensor(19, fields=vint(13, 0x3C00)), 1.0),  # half_val
        (tensor(1, content=struct.pack("<f", 2.5)), 2.5),  # tensor_content
        (tensor(2, content=struct.pack("<d", 1 / 3)), 1 / 3),
        (tensor(9, content=struct.pack("<q", -7)), -7.0),
        (tensor(14, content=struct.pack("<H", 0x3FC0)), 1.5),  # bfloat16
        (tensor(1, dims=[1, 1], fields=ld(5, struct.pack("<f", 4.0))), 4.0),  # shape [1, 1]
    ],
)
def test_one_element_numeric_tensors_are_scalars(proto, expected):
    assert tensor_scalar(proto) == pytest.approx(expected)
    assert _one([tensor_value("t", proto)]) == [("t", 3, pytest.approx(expected))]


@pytest.mark.parametrize(
    "proto",
    [
        tensor(1, dims=[2], fields=ld(5, struct.pack("<2f", 1.0, 2.0))),  # a vector
        tensor(7, fields=ld(8, b"some text")),  # a string tensor
        tensor(1, dims=[0]),  # empty
    ],
)
def test_other_tensors_are_not_scalars(proto):
    assert tensor_scalar(proto) is None
    assert _one([tensor_value("t", proto)]) == []


def test_tensors_of_another_plugin_are_ignored_and_the_plugin_is_remembered_per_tag():
    plugins: dict[str, str] = {}
    scalar = tensor(1, fields=ld(5, struct.pack("<f", 1.0)))
    first = event(0, [tensor_value("hp", scalar, plugin="hparams"), tensor_value("loss", scalar)])
    later = event(1, [tensor_value("hp", scalar, plugin=None), tensor_value("loss", scalar, plugin=None)])
    assert event_scalars(first, plugins) == [("loss", 0, 1.0)]
    assert event_scalars(later, plugins) == [("loss", 1, 1.0)]
    assert plugins == {"hp": "hparams", "loss": "scalars"}


def test_a_file_with_damage_keeps_every_good_point_and_says_what_was_wrong(tmp_path):
    path = write_events(tmp_path / "events.out.tfevents.1.h.1.0", [scalars_event(s, {"r": s / 10}) for s in range(5)])
    data = bytearray(path.read_bytes())
    garbage = record(b"\x0a\xff")  # a valid record that is not a valid Event
    cut = bytes(data) + garbage + record(scalars_event(5, {"r": 0.5}))[:-3]  # the writer is mid-record
    path.write_bytes(cut)
    points, warnings = read_event_file(path)
    assert points == [("r", s, pytest.approx(s / 10)) for s in range(5)]
    assert any("last record incomplete" in w for w in warnings)
    assert any("not valid Event protos" in w for w in warnings)


def test_event_files_are_found_recursively_oldest_first(tmp_path):
    for stamp in (300, 20, 1000):
        write_events(tmp_path / "tb" / f"sub{stamp}" / f"events.out.tfevents.{stamp}.h.1.0", [])
    (tmp_path / "tb" / "events.out.tfevents.notes.txt").mkdir()  # a directory is not an event file
    assert [p.parent.name for p in find_event_files(tmp_path)] == ["sub20", "sub300", "sub1000"]


def test_files_written_by_torch_summary_writer_the_writer_slime_uses(tmp_path):
    pytest.importorskip("tensorboard", reason="torch.utils.tensorboard needs the optional tensorboard package")
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path))
    for step in range(30):
        writer.add_scalar("rollout/m2rl/math/reward_mean", step / 30, step)
        writer.add_scalar("new_style", step * 2.0, step, new_style=True)
    writer.add_text("notes", "not a scalar", 0)
    writer.close()
    points = [p for f in find_event_files(tmp_path) for p in read_event_file(f)[0]]
    by_tag = {}
    for tag, step, value in points:
        by_tag.setdefault(tag, []).append((step, value))
    assert set(by_tag) == {"rollout/m2rl/math/reward_mean", "new_style"}
    assert by_tag["rollout/m2rl/math/reward_mean"] == [(s, pytest.approx(s / 30)) for s in range(30)]
    assert by_tag["new_style"] == [(s, s * 2.0) for s in range(30)]
