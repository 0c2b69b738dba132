"""get_sandbox picks the backend from sandbox_url and shares one instance per settings, lazily."""

from m2rl_slime.rewards.code import CodeConfig
from m2rl_slime.sandbox import get_sandbox
from m2rl_slime.sandbox.client import FusionClient
from m2rl_slime.sandbox.embedded import EmbeddedSandbox
from m2rl_slime.sandbox.registry import backend_name


def test_backend_choice_and_sharing(monkeypatch):
    monkeypatch.setattr("m2rl_slime.sandbox.registry._cache", {})
    remote = get_sandbox(CodeConfig(sandbox_url="http://127.0.0.1:9/run_code"))
    assert isinstance(remote, FusionClient) and remote.base_url == "http://127.0.0.1:9"
    assert get_sandbox(CodeConfig(sandbox_url="http://127.0.0.1:9/run_code")) is remote
    assert get_sandbox(CodeConfig(sandbox_url="http://127.0.0.1:9/run_code", retries=0)) is not remote
    local = get_sandbox(CodeConfig(workers=1))
    assert isinstance(local, EmbeddedSandbox) and local.stats()["server_pid"] is None  # not started yet
    assert get_sandbox(CodeConfig(workers=1)) is local
    assert local.settings.workers == 1 and local.client_settings.retries == 3
    assert local.client_settings.max_in_flight == 1  # never more requests than the embedded server has slots
    assert backend_name(CodeConfig()) == "embedded"
