"""Fixtures for the reward tests: one small router (2 workers) shared by the module tests."""

import pytest

from m2rl_slime.rewards.config import RewardConfig
from m2rl_slime.rewards.router import Router


@pytest.fixture(scope="session")
def router():
    return Router(RewardConfig(workers=2, deadline_s=3.0))
