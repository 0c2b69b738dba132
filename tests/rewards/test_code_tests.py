"""The code verifier: block extraction, config, judging logic (fake sandbox) and end-to-end runs.

End-to-end cases run the issue's bad inputs through the embedded sandbox, and the shipped Nemotron
code rows (with hand-written correct solutions) through the reward router, both with the embedded
executor and with `python -m m2rl_slime.sandbox serve` on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from m2rl_slime.config import parse_dataclass
from m2rl_slime.errors import ConfigError, SandboxError
from m2rl_slime.rewards.code_tests import CodeConfig, extract_code, verify
from m2rl_slime.rewards.config import RewardConfig
from m2rl_slime.rewards.result import Reason
from m2rl_slime.rewards.router import Item, Router
from m2rl_slime.sandbox.base import CommandResult, RunResult, RunSpec, SandboxUnavailableError

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]
TESTS = {"inputs": ["1 2\n", "3 4\n", "5 6\n", "7 8\n"], "outputs": ["3\n", "7\n", "11\n", "15\n"]}
ADD = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"


def fence(code: str, tag: str = "python") -> str:
    return f"```{tag}\n{code}\n```"


# ---- extraction ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,code,language,blocks",
    [
        ("no code here", None, None, 0),
        ("Answer:\n```python\nprint(1)\n```\nDone.", "print(1)\n", "python", 1),
        # M2RL's greedy regex spans from the first ```python to the last fence, prose included.
        ("```python\nprint(1)\n```\nBetter:\n```python\nprint(2)\n```", "print(2)\n", "python", 2),
        ("```python\nprint(1)\n```\nOutput:\n```text\n1\n```", "print(1)\n", "python", 2),
        ("```\nprint(3)\n```", "print(3)\n", "python", 1),
        ("```Python3\nprint(3)\n```", "print(3)\n", "python", 1),
        ("```cpp\nint main(){}\n```", "int main(){}\n", "cpp", 1),
        ("```java\nclass A {}\n```", "class A {}\n", "java", 1),
        ("~~~python\nprint(4)\n~~~", "print(4)\n", "python", 1),
        ("````python\nprint('```')\n```\n````", "print('```')\n```\n", "python", 1),  # longer outer fence
        ("```python\nprint(5)\n", "print(5)\n", "python", 1),  # unclosed (truncated) final fence
    ],
    ids=["none", "one", "two-python", "python-then-text", "untagged", "tag-case", "cpp", "java", "tilde",
         "nested-fence", "unclosed"],
)  # fmt: skip
def test_extract_code(text, code, language, blocks):
    block = extract_code(text)
    if code is None:
        assert block is None
        return
    assert (block.code, block.language, block.blocks) == (code, language, blocks)


# ---- config ----------------------------------------------------------------------------------------


def test_config_parses_from_yaml_mapping_and_pickles():
    config = parse_dataclass(
        CodeConfig, {"sandbox_url": "http://h:8080", "max_tests": 20, "languages": ["python"]}, "x"
    )
    assert config.max_tests == 20 and config.languages == ("python",)
    assert pickle.loads(pickle.dumps(config)) == config
    with pytest.raises(ConfigError, match="unknown key.*memory_limit.*valid keys"):
        parse_dataclass(CodeConfig, {"memory_limit": 4096}, "m2rl_reward.code")


@pytest.mark.parametrize(
    "values,words",
    [
        ({"run_timeout_s": 0}, "run_timeout_s"),
        ({"max_tests": 0}, "max_tests"),
        ({"languages": ["rust"]}, "languages"),
        ({"reward": "pass_fraction"}, "stop_on_first_failure"),
        ({"sandbox_url": "localhost:8080"}, "sandbox_url"),
    ],
)
def test_config_validation(values, words):
    with pytest.raises(ConfigError, match=words):
        parse_dataclass(CodeConfig, values, "m2rl_reward.code")


# ---- judging with a fake sandbox ---------------------------------------------------------------------


class FakeSandbox:
    """Answers each RunSpec with `answer(spec)`; records what was sent."""

    def __init__(self, answer):
        self.answer = answer
        self.specs: list[RunSpec] = []

    async def run(self, spec: RunSpec) -> RunResult:
        self.specs.append(spec)
        await asyncio.sleep(0)
        outcome = self.answer(spec)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def describe(self) -> str:
        return "fake"

    def stats(self):
        return {}


def finished(
    stdout: str = "", code: int = 0, stderr: str = "", status: str = "Finished", truncated=False
) -> RunResult:
    run = CommandResult(status, 0.01, code, stdout, stderr, truncated)
    ok = status == "Finished" and code == 0
    return RunResult("Success" if ok else "Failed", run_result=run, network_isolated=True)


def adder(spec: RunSpec) -> RunResult:
    a, b = map(int, spec.stdin.split())
    return finished(f"{a + b}\n")


def judge(response, label=None, metadata=None, answer=adder, **config):
    sandbox = FakeSandbox(answer)
    metadata = {"unit_tests": TESTS} if metadata is None else metadata
    result = asyncio.run(verify(response, label, metadata, config=CodeConfig(**config), sandbox=sandbox))
    return result, sandbox


def test_all_tests_pass():
    result, sandbox = judge("Here:\n" + ADD)
    assert result.score == 1.0 and result.reason is Reason.OK
    assert result.details["pass_fraction"] == 1.0 and result.details["statuses"] == ["pass"] * 4
    assert result.details["network_isolated"] is True and result.details["sandbox"] == "fake"
    assert sorted(s.stdin for s in sandbox.specs) == TESTS["inputs"]
    assert {s.memory_limit_mb for s in sandbox.specs} == {4096}  # sent as memory_limit_MB


def test_bad_label_is_reported_before_anything_runs():
    result, sandbox = judge("no code", metadata={"unit_tests": {"inputs": ["1"], "outputs": [1]}})
    assert result.reason is Reason.BAD_LABEL and result.details["field"] == "metadata.unit_tests.outputs[0]"
    assert sandbox.specs == []
    result, _ = judge(ADD, metadata={"domain": "code"})
    assert result.reason is Reason.BAD_LABEL and "metadata.unit_tests" in result.details["error"]


def test_tests_may_come_from_the_label():
    result, _ = judge(ADD, label=json.dumps(TESTS), metadata={})
    assert result.reason is Reason.OK


@pytest.mark.parametrize(
    "response,words",
    [
        ("I would loop over the input.", "no fenced code block"),
        ("```python\n\n```", "no fenced code block"),
        (fence("class A {}", "java"), "java"),
    ],
)
def test_no_code(response, words):
    result, sandbox = judge(response)
    assert result.reason is Reason.NO_CODE and words in result.details["error"] and not sandbox.specs


def test_cpp_answer_to_call_based_tests_is_no_code():
    metadata = {"unit_tests": {"inputs": ["1"], "outputs": ["1"], "fn_name": "f"}}
    result, _ = judge(fence("int main(){}", "cpp"), metadata=metadata)
    assert result.reason is Reason.NO_CODE and "python" in result.details["error"]


def test_stops_at_the_first_failure():
    def wrong_on_second(spec):
        return finished("0\n") if spec.stdin == "3 4\n" else adder(spec)

    result, sandbox = judge(ADD, answer=wrong_on_second, test_concurrency=1)
    assert result.score == 0.0 and result.reason is Reason.WRONG
    assert result.details["statuses"] == ["pass", "wrong", "skipped", "skipped"]
    assert result.details["first_failure"] == {"index": 1, "status": "wrong", "line": 0, "expected": "7", "got": "0"}
    assert len(sandbox.specs) == 2


def test_pass_fraction_runs_everything():
    def wrong_on_second(spec):
        return finished("0\n") if spec.stdin == "3 4\n" else adder(spec)

    result, sandbox = judge(ADD, answer=wrong_on_second, reward="pass_fraction", stop_on_first_failure=False)
    assert result.score == 0.75 and result.reason is Reason.WRONG and len(sandbox.specs) == 4


@pytest.mark.parametrize(
    "selection,stdins",
    [("first", ["1 2\n", "3 4\n"]), ("evenly_spaced", ["1 2\n", "5 6\n"])],
)
def test_deterministic_test_cap(selection, stdins):
    result, sandbox = judge(ADD, max_tests=2, test_selection=selection)
    assert result.reason is Reason.OK and result.details["tests_selected"] == 2
    assert sorted(s.stdin for s in sandbox.specs) == stdins


@pytest.mark.parametrize(
    "outcome,reason,status",
    [
        (finished(status="TimeLimitExceeded", code=-9), Reason.TIMEOUT, "timeout"),
        (finished(code=1, stderr="Traceback (most recent call last):\nZeroDivisionError: x\n"), Reason.RUNTIME_ERROR,
         "runtime_error"),
        (finished(code=1, stderr='  File "/tmp/main.py", line 1\n    a b\nSyntaxError: invalid syntax\n'),
         Reason.COMPILE_ERROR, "compile_error"),
        (finished("3\n" * 100, code=1, truncated=True), Reason.WRONG, "output_limit"),
        (RunResult("Failed", compile_result=CommandResult("Finished", 0.5, 1, "", "error: x")), Reason.COMPILE_ERROR,
         "compile_error"),
    ],
    ids=["timeout", "runtime", "syntax", "output-limit", "cpp-compile"],
)  # fmt: skip
def test_failure_reasons(outcome, reason, status):
    result, _ = judge(ADD, answer=lambda spec: outcome, test_concurrency=1)
    assert result.reason is reason and result.details["first_failure"]["status"] == status


def test_compile_errors_stop_even_when_running_everything():
    bad = finished(code=1, stderr='  File "/tmp/main.py", line 1\nSyntaxError: x\n')
    result, sandbox = judge(ADD, answer=lambda s: bad, stop_on_first_failure=False, test_concurrency=1)
    assert result.reason is Reason.COMPILE_ERROR and len(sandbox.specs) == 1


def test_lowest_index_failure_is_reported():
    def answer(spec):
        if spec.stdin == "1 2\n":
            return finished(status="TimeLimitExceeded", code=-9)
        return finished("wrong\n")

    result, _ = judge(ADD, answer=answer, stop_on_first_failure=False)
    assert result.reason is Reason.TIMEOUT and result.details["first_failure"]["index"] == 0


def test_infrastructure_failures_are_not_wrong_answers():
    result, _ = judge(ADD, answer=lambda s: SandboxError("HTTP 502 from http://sandbox:8080"))
    assert result.reason is Reason.SANDBOX_ERROR and "502" in result.details["error"]
    result, _ = judge(ADD, answer=lambda s: SandboxUnavailableError("breaker open for http://sandbox:8080"))
    assert result.reason is Reason.SANDBOX_UNAVAILABLE and "http://sandbox:8080" in result.details["error"]


def test_inputs_are_not_mutated_and_config_mapping_is_accepted():
    metadata = {"unit_tests": json.loads(json.dumps(TESTS)), "domain": "code"}
    before = json.dumps(metadata)
    result = asyncio.run(verify(ADD, None, metadata, config={"max_tests": 1}, sandbox=FakeSandbox(adder)))
    assert result.reason is Reason.OK and json.dumps(metadata) == before


# ---- end to end: the embedded sandbox --------------------------------------------------------------

SMALL = CodeConfig(workers=2, memory_limit_mb=512, run_timeout_s=2.0, test_concurrency=2)


@pytest.fixture(scope="module")
def real():
    from m2rl_slime.sandbox import get_sandbox

    sandbox = get_sandbox(SMALL)
    try:
        asyncio.run(sandbox.run(RunSpec("print(1)")))
    except SandboxError as exc:
        pytest.skip(f"the embedded sandbox cannot start here (needs root for namespaces): {exc}")
    yield sandbox
    sandbox.shutdown()


def real_verify(response, metadata=None, **overrides):
    config = CodeConfig(**{**{f: getattr(SMALL, f) for f in ("workers", "memory_limit_mb", "test_concurrency")},
                           "run_timeout_s": 1.0, **overrides})  # fmt: skip
    return asyncio.run(verify(response, None, metadata or {"unit_tests": TESTS}, config=config))


@pytest.mark.parametrize(
    "response,reason",
    [
        (ADD, Reason.OK),
        (fence("import sys\na, b = map(int, input().split())\nprint(a + b)\nsys.exit(0)"), Reason.OK),
        (fence("import sys\nprint('debug', file=sys.stderr)\na, b = map(int, input().split())\nprint(a + b)"),
         Reason.OK),
        (fence("print(1)") + "\nor better:\n" + ADD, Reason.OK),  # two code blocks: the last one runs
        ("no code block at all", Reason.NO_CODE),
        (fence("def f(:\n    pass"), Reason.COMPILE_ERROR),
        (fence("while True:\n    pass"), Reason.TIMEOUT),
        (fence("a = input()\nb = input()"), Reason.RUNTIME_ERROR),  # reads stdin past EOF
        (fence("import sys\nsys.stdout.buffer.write(b'\\xff\\xfe\\n')"), Reason.WRONG),  # non-UTF-8 output
        (fence("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)"), Reason.RUNTIME_ERROR),
        (fence("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"),
         Reason.TIMEOUT),
    ],
    ids=["correct", "sys-exit-0", "stderr", "two-blocks", "no-code", "syntax-error", "infinite-loop", "stdin-eof",
         "non-utf8", "socket", "fork-bomb"],
)  # fmt: skip
def test_bad_inputs_end_to_end(real, response, reason):
    started = time.monotonic()
    result = real_verify(response)
    assert result.reason is reason, result.details
    assert time.monotonic() - started < 8.0


def test_call_based_tests_end_to_end(real):
    metadata = {
        "unit_tests": {"inputs": ["[1, 2, 3]\n2", "[5]\n0"], "outputs": ["[3, 4, 5]", "[5]"], "fn_name": "shift"}
    }
    top_level = fence("def shift(xs, k):\n    return [x + k for x in xs]")
    method = fence(
        "class Solution:\n    def shift(self, xs: List[int], k: int) -> List[int]:\n        return [x + k for x in xs]"
    )
    wrong = fence("def shift(xs, k):\n    print('noise')\n    return xs")
    assert real_verify(top_level, metadata).reason is Reason.OK
    assert real_verify(method, metadata).reason is Reason.OK  # `List` comes from the harness header
    assert real_verify(wrong, metadata).reason is Reason.WRONG
    assert real_verify(fence("def other():\n    pass"), metadata).reason is Reason.RUNTIME_ERROR


# ---- end to end: the shipped Nemotron code rows through the router ---------------------------------------


# Unit tests of each set's rows (tests/conftest.py), all run by the embedded test below.
TESTS_PER_SET = {"nemo_gym": 283, "repo": 18}


def _examples(example_data: Path) -> list[tuple[dict, dict]]:
    rows = {}
    for line in (example_data / "nemo_gym_examples" / "code_gen.jsonl").read_text().splitlines():
        row = json.loads(line)
        rows[row["hash_id"]] = row
    solutions = [json.loads(line) for line in (DATA / "code_gen_solutions.jsonl").read_text().splitlines()]
    pairs = [(rows[s["hash_id"]], s) for s in solutions if s["hash_id"] in rows]
    assert len(pairs) == len(rows), "every example row needs its solution in code_gen_solutions.jsonl"
    return pairs


def _score_examples(code_config: CodeConfig, example_data: Path):
    router = Router(RewardConfig(workers=1, code=code_config))
    items, expected = [], []
    for row, solution in _examples(example_data):
        metadata = {"domain": "code", "unit_tests": row["verifier_metadata"]["unit_tests"]}
        items.append(Item("code", "<think>Let me solve it.</think>" + solution["response"], None, metadata))
        expected.append((solution["expected_score"], solution["expected_reason"]))
        code_end = solution["response"].rindex("```")
        broken = solution["response"][:code_end] + "print(-12345)\n```"  # a wrong answer to the same row
        items.append(Item("code", "<think>Hmm.</think>" + broken, None, metadata))
        expected.append((0.0, "wrong"))
    results = router.score_many(items)
    return [(r.score, r.reason.value) for r in results], expected, results


def test_shipped_examples_through_the_router_embedded(real, example_data, example_set):
    got, expected, results = _score_examples(SMALL, example_data)
    assert got == expected, [r.details.get("first_failure") for r in results]
    assert sum(r.details["tests_run"] for r in results[::2]) == TESTS_PER_SET[example_set]  # every test of every row


@pytest.fixture(scope="module")
def server_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "m2rl_slime.sandbox", "serve", "--port", str(port), "--workers", "2",
           "--memory-mb", "512"]  # fmt: skip
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/v1/ping", timeout=2):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.skip(f"the sandbox server cannot start here: {proc.stderr.read()[-1000:]}")
            assert time.monotonic() < deadline
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_shipped_examples_through_the_router_and_the_server(server_url, example_data):
    config = CodeConfig(sandbox_url=server_url + "/run_code", max_tests=3, test_selection="evenly_spaced")
    got, expected, results = _score_examples(config, example_data)
    assert got == expected
    assert {r.details["sandbox"] for r in results} == {server_url + "/run_code"}
