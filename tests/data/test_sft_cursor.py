"""Pins the epoch walk of `SFTDataSource` (`m2rl_slime.data.sft_cursor`): slime's order, seeded epochs, resume."""

from __future__ import annotations

import numpy as np
import pytest

from m2rl_slime.data.sft_cursor import EpochCursor, epoch_permutation
from m2rl_slime.errors import ConfigError


def test_without_shuffle_rows_come_in_order_across_epochs():
    cursor = EpochCursor(5, seed=1, shuffle=False)
    assert cursor.take(3).tolist() == [0, 1, 2]
    assert cursor.take(4).tolist() == [3, 4, 0, 1]
    assert cursor.state_dict() == {"epoch_id": 1, "sample_offset": 2}
    assert cursor.take(13).tolist() == [2, 3, 4] + [0, 1, 2, 3, 4] * 2
    assert cursor.state_dict() == {"epoch_id": 4, "sample_offset": 0}


def test_shuffled_epochs_are_permutations_seeded_by_epoch():
    cursor = EpochCursor(50, seed=7, shuffle=True)
    first, second = cursor.take(50), cursor.take(50)
    assert sorted(first.tolist()) == list(range(50)) == sorted(second.tolist())
    assert first.tolist() != second.tolist() != list(range(50))
    assert first.tolist() == epoch_permutation(50, 7, 0).tolist()
    assert second.tolist() == epoch_permutation(50, 7, 1).tolist()
    assert epoch_permutation(50, 8, 0).tolist() != first.tolist()
    assert epoch_permutation(10, 7, 0).dtype == np.int32


def test_a_restored_cursor_continues_the_same_sequence():
    straight = EpochCursor(11, seed=3, shuffle=True)
    expected = np.concatenate([straight.take(4) for _ in range(8)]).tolist()
    run = EpochCursor(11, seed=3, shuffle=True)
    got = np.concatenate([run.take(4) for _ in range(3)]).tolist()
    resumed = EpochCursor(11, seed=3, shuffle=True)
    resumed.load_state_dict(run.state_dict())
    got += np.concatenate([resumed.take(4) for _ in range(5)]).tolist()
    assert got == expected


def test_bad_sizes_and_states_are_config_errors():
    with pytest.raises(ConfigError):
        EpochCursor(0, seed=1, shuffle=True)
    with pytest.raises(ConfigError):
        EpochCursor(3, seed=-1, shuffle=True)
    with pytest.raises(ConfigError, match="does not fit"):
        EpochCursor(3, seed=1, shuffle=True).load_state_dict({"epoch_id": 0, "sample_offset": 3})
