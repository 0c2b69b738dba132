"""RunSpec/RunResult speak SandboxFusion's /run_code JSON exactly; schema errors name the field."""

import pytest

from m2rl_slime.sandbox.base import CommandResult, RunResult, RunSpec, SchemaError

# A response as SandboxFusion returns it, without our extra keys.
FUSION_RESPONSE = {
    "status": "Failed",
    "message": "",
    "compile_result": None,
    "run_result": {
        "status": "Finished",
        "execution_time": 0.02,
        "return_code": 3,
        "stdout": "partial\n",
        "stderr": "boom\n",
    },
    "executor_pod_name": None,
    "files": {},
}


def test_request_json_uses_fusion_field_names():
    spec = RunSpec("print(1)", stdin="x", memory_limit_mb=256, files={"a.txt": "eA=="}, fetch_files=("out",))
    body = spec.to_json()
    assert body == {
        "code": "print(1)",
        "language": "python",
        "stdin": "x",
        "compile_timeout": 10.0,
        "run_timeout": 10.0,
        "memory_limit_MB": 256,
        "files": {"a.txt": "eA=="},
        "fetch_files": ["out"],
    }
    assert RunSpec.from_json(body) == spec


def test_cpu_time_extensions_round_trip_and_stay_out_of_plain_requests():
    spec = RunSpec("x", run_timeout=7.0, cpu_timeout=2.0, compile_cpu_timeout=3.0)
    body = spec.to_json()
    assert (body["run_timeout"], body["cpu_timeout"], body["compile_cpu_timeout"]) == (7.0, 2.0, 3.0)
    assert RunSpec.from_json(body) == spec
    assert "cpu_timeout" not in RunSpec("x").to_json()
    with pytest.raises(SchemaError, match="cpu_timeout"):
        RunSpec.from_json({"code": "x", "cpu_timeout": "fast"})
    result = CommandResult.from_json({"status": "Finished", "cpu_time": 0.5}, "run_result")
    assert result.cpu_time == 0.5 and CommandResult.from_json({"status": "Finished"}, "r").cpu_time is None


def test_response_from_fusion_parses_and_round_trips():
    result = RunResult.from_json(FUSION_RESPONSE)
    assert result.status == "Failed" and result.run_result.return_code == 3
    assert result.network_isolated is None and not result.timed_out and not result.truncated
    assert RunResult.from_json(result.to_json()) == result


def test_flags_from_command_results():
    tle = RunResult("Failed", run_result=CommandResult("TimeLimitExceeded", 1.0, -9))
    cut = RunResult("Failed", run_result=CommandResult("Finished", 0.1, 1, truncated=True))
    assert tle.timed_out and not tle.truncated
    assert cut.truncated and not cut.timed_out


@pytest.mark.parametrize(
    "body,field",
    [
        ([], "request"),
        ({"language": "python"}, "request.code"),
        ({"code": "x", "stdin": 3}, "request.stdin"),
        ({"code": "x", "run_timeout": "10"}, "request.run_timeout"),
        ({"code": "x", "memory_limit_MB": 1.5}, "request.memory_limit_MB"),
        ({"code": "x", "files": {"a": 1}}, "request.files"),
        ({"code": "x", "fetch_files": "a"}, "request.fetch_files"),
    ],
)
def test_bad_requests_name_the_field(body, field):
    with pytest.raises(SchemaError, match=field.replace(".", r"\.")):
        RunSpec.from_json(body)


@pytest.mark.parametrize("body", [{"status": "Weird"}, {"status": "Success", "run_result": {"status": "?"}}, "x"])
def test_bad_responses_raise(body):
    with pytest.raises(SchemaError):
        RunResult.from_json(body)
