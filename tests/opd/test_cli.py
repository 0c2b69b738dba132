"""`python -m m2rl_slime.opd`: dry-run prints the server commands; wait-teachers exits 0 or names the down ones."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import pytest

from m2rl_slime.errors import ConfigError
from m2rl_slime.opd.cli import load_config_file, main

YAML = """\
slime_args_are_elsewhere: true
m2rl_opd:
  teachers:
    math: {urls: ["http://127.0.0.1:PORT"], serve: {model_path: /ckpt/math-rl, port: PORT}}
  no_teacher: {agent: skip}
"""


def write(tmp_path, port=30001, text=YAML):
    path = tmp_path / "custom_config.yaml"
    path.write_text(text.replace("PORT", str(port)))
    return path


def test_serve_teachers_dry_run(tmp_path, capsys):
    assert main(["serve-teachers", "--config", str(write(tmp_path)), "--dry-run", "--first-gpu", "4"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    expected = (
        "CUDA_VISIBLE_DEVICES=4 python3 -m sglang.launch_server --model-path /ckpt/math-rl --host 0.0.0.0 "
        "--port 30001 --tp-size 1 --mem-fraction-static 0.8"
    )
    assert out == [expected]


def test_config_file_lookup(tmp_path):
    nested = tmp_path / "nested.yaml"
    nested.write_text(
        "plugins:\n" + "".join("  " + line + "\n" for line in YAML.splitlines()[1:]).replace("PORT", "1")
    )
    assert set(load_config_file(nested).teachers) == {"math"}
    missing = tmp_path / "missing.yaml"
    missing.write_text("m2rl_reward: {}\n")
    with pytest.raises(ConfigError, match="need exactly one `m2rl_opd:` section \\(not found\\)"):
        load_config_file(missing)
    with pytest.raises(ConfigError, match="cannot read YAML"):
        load_config_file(tmp_path / "absent.yaml")


def test_wait_teachers_exit_codes(kit, tmp_path, unused_port, capsys):
    assert (
        main(
            ["wait-teachers", "--config", str(write(tmp_path, unused_port)), "--timeout", "0.2", "--interval", "0.05"]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert (
        f"error: 1 teacher URL(s) not healthy after 0.2 s: teacher 'math-rl' (domain 'math') at "
        f"http://127.0.0.1:{unused_port}/health_generate" in err
    )

    server = kit.TeacherServer()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        port = int(server.url.rsplit(":", 1)[1])
        assert main(["wait-teachers", "--config", str(write(tmp_path, port)), "--timeout", "10"]) == 0
        assert "all 1 teacher URL(s) healthy" in capsys.readouterr().out
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_module_help_runs():
    result = subprocess.run(
        [sys.executable, "-m", "m2rl_slime.opd", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "serve-teachers" in result.stdout and "wait-teachers" in result.stdout
