"""The code verifier: block extraction, config, judging logic (fake sandbox) and end-to-end runs.

End-to-end cases run hostile and awkward answers through the embedded sandbox, and self-written
problems (tests/rewards/code/data/problems.jsonl, with correct solutions) through the reward router,
both with the embedded executor and with `python -m m2rl_slime.sandbox serve` on loopback; the
shipped Nemotron rows are an optional extra where the shared data is present.
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
from m2rl_slime.rewards.code import CodeConfig, extract_code, verify
from m2rl_slime.rewards.config import RewardConfig
from m2rl_slime.rewards.result import Reason
from m2rl_slime.rewards.router import Item, Router
from m2rl_slime.sandbox.base import CommandResult, RunResult, RunSpec, SandboxConfigError, SandboxUnavailableError

from ...sandbox.conftest import require_sandbox

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[3]
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
    # CPU-time limits, with the wall-clock backstop in SandboxFusion's fields
    assert {(s.cpu_timeout, s.run_timeout, s.compile_cpu_timeout, s.compile_timeout) for s in sandbox.specs} == {
        (10.0, 31.0, 10.0, 31.0)
    }


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


def test_a_sandbox_that_cannot_work_stops_the_run_instead_of_scoring_zero():
    with pytest.raises(ConfigError, match="does not run inside"):
        judge(ADD, answer=lambda s: SandboxConfigError("the interpreter /x does not run inside the sandbox"))


def test_a_sample_past_its_deadline_is_an_infrastructure_failure():
    class Stuck(FakeSandbox):
        async def run(self, spec):
            await asyncio.sleep(30)

    result = asyncio.run(verify(ADD, None, {"unit_tests": TESTS}, config=CodeConfig(sample_timeout_s=0.2),
                                sandbox=Stuck(adder)))  # fmt: skip
    assert result.reason is Reason.SANDBOX_ERROR and "sample_timeout_s" in result.details["error"]


def test_stderr_never_fails_a_correct_answer():
    noisy = finished("3\n", stderr="warning: " * 10_000)
    result, _ = judge(ADD, answer=lambda spec: noisy if spec.stdin == "1 2\n" else adder(spec))
    assert result.reason is Reason.OK


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

    require_sandbox()
    sandbox = get_sandbox(SMALL)
    assert asyncio.run(sandbox.run(RunSpec("print(1)"))).status == "Success"
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
        (fence("import sys\nsys.stderr.write('x' * 20_000_000)\na, b = map(int, input().split())\nprint(a + b)"),
         Reason.OK),  # 20 MB of stderr
        (fence("import time\ntime.sleep(1.5)\na, b = map(int, input().split())\nprint(a + b)"),
         Reason.OK),  # waits past its 1 s limit on the clock, but uses no CPU
        (fence("import os\nfor _ in range(1500):\n    os.mkdir('d')\n    os.chdir('d')\n"
               "a, b = map(int, input().split())\nprint(a + b)"), Reason.OK),  # a deep tree to clean up
    ],
    ids=["correct", "sys-exit-0", "stderr", "two-blocks", "no-code", "syntax-error", "infinite-loop", "stdin-eof",
         "non-utf8", "socket", "fork-bomb", "stderr-flood", "sleeps", "deep-tree"],
)  # fmt: skip
def test_bad_inputs_end_to_end(real, response, reason):
    result = real_verify(response)
    assert result.reason is reason, result.details
    if reason is Reason.TIMEOUT:
        assert (
            result.details["first_failure"]["cpu_time_s"] > 1.0
            or result.details["first_failure"]["wall_time_s"] >= 4.0
        )  # over its CPU limit, or over the wall-clock backstop (3 x 1 s + 1 s)


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
    assert real_verify(fence("def shift(:\n    pass"), metadata).reason is Reason.COMPILE_ERROR


FORGER = """
import gc, json, os, re, sys

def _nonce():
    main = sys.modules.get("__main__")
    for name in ("_request", "request"):  # a harness global
        value = getattr(main, name, None)
        if isinstance(value, dict) and "nonce" in value:
            return value["nonce"]
    for obj in gc.get_objects():  # anything in this process's memory
        if isinstance(obj, dict) and isinstance(obj.get("nonce"), str):
            return obj["nonce"]
    for path in ("/proc/self/fd/0", "/proc/1/fd/0", f"/proc/{os.getppid()}/fd/0", f"/proc/{os.getppid()}/environ"):
        try:
            found = re.search(r'"nonce": "(\\w+)"', open(path, errors="replace").read())
        except OSError:
            continue
        if found:
            return found.group(1)
    return None

def shift(xs, k):
    nonce = _nonce()
    if nonce:  # the answer key leaked to the program; forge the harness's verdict line and leave
        sys.stdout.write("\\n\\x1e" + nonce + "\\x1e" + json.dumps([3, 4, 5]) + "\\n")
        sys.stdout.flush()
        os._exit(0)
    return []
"""


def test_the_call_based_result_cannot_be_forged(real):
    metadata = {"unit_tests": {"inputs": ["[1, 2, 3]\n2"], "outputs": ["[3, 4, 5]"], "fn_name": "shift"}}
    result = real_verify(fence(FORGER), metadata)
    assert result.reason is not Reason.OK and result.score == 0.0, result.details


# ---- end to end: self-written problems (and the shipped Nemotron rows, where present) through the router --------


def _problems() -> list[tuple[dict, dict]]:
    rows = [json.loads(line) for line in (DATA / "problems.jsonl").read_text().splitlines()]
    return [({"domain": "code", "unit_tests": row["unit_tests"]}, row) for row in rows]


def _nemotron(shared_data: Path) -> list[tuple[dict, dict]]:
    rows = {}
    for line in (shared_data / "nemo_gym_examples" / "code_gen.jsonl").read_text().splitlines():
        row = json.loads(line)
        rows[row["hash_id"]] = row
    solutions = [json.loads(line) for line in (DATA / "code_gen_solutions.jsonl").read_text().splitlines()]
    return [({"domain": "code", "unit_tests": rows[s["hash_id"]]["verifier_metadata"]["unit_tests"]}, s)
            for s in solutions]  # fmt: skip


def _score(code_config: CodeConfig, cases: list[tuple[dict, dict]]):
    router = Router(RewardConfig(workers=1, code=code_config))
    items, expected = [], []
    for metadata, solution in cases:
        items.append(Item("code", "<think>Let me solve it.</think>" + solution["response"], None, metadata))
        expected.append((solution["expected_score"], solution["expected_reason"]))
        code_end = solution["response"].rindex("```")
        body = solution["response"][:code_end]
        if metadata["unit_tests"].get("fn_name"):
            broken = (
                body + "    def unused(self):\n        pass\nSolution.maxSubArray = lambda self, nums: -12345\n```"
            )
        else:
            broken = body + "print(-12345)\n```"  # a wrong answer to the same row
        items.append(Item("code", "<think>Hmm.</think>" + broken, None, metadata))
        expected.append((0.0, "wrong"))
    results = router.score_many(items)
    return [(r.score, r.reason.value) for r in results], expected, results


def test_problems_through_the_router_embedded(real):
    got, expected, results = _score(SMALL, _problems())
    assert got == expected, [r.details.get("first_failure") for r in results]
    assert sum(r.details["tests_run"] for r in results[::2]) == 48  # every test of every row ran


def test_shipped_examples_through_the_router_embedded(real, shared_data):
    got, expected, results = _score(SMALL, _nemotron(shared_data))
    assert got == expected, [r.details.get("first_failure") for r in results]
    assert sum(r.details["tests_run"] for r in results[::2]) == 283


@pytest.fixture(scope="module")
def server_url():
    require_sandbox()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "m2rl_slime.sandbox", "serve", "--port", str(port), "--workers", "2",
           "--memory-mb", "512"]  # fmt: skip
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url + "/v1/ping", timeout=2):
                break
        except OSError:
            assert proc.poll() is None, f"the sandbox server exited: {proc.stderr.read()[-1000:]}"
            assert time.monotonic() < deadline, "the sandbox server did not start"
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_problems_through_the_router_and_the_server(server_url):
    config = CodeConfig(sandbox_url=server_url + "/run_code", max_tests=3, test_selection="evenly_spaced")
    got, expected, results = _score(config, _problems())
    assert got == expected
    assert {r.details["sandbox"] for r in results} == {server_url + "/run_code"}


def test_shipped_examples_through_the_router_and_the_server(server_url, shared_data):
    config = CodeConfig(sandbox_url=server_url + "/run_code", max_tests=3, test_selection="evenly_spaced")
    got, expected, _ = _score(config, _nemotron(shared_data))
    assert got == expected


def test_200_concurrent_rewards_against_a_2_slot_server_all_score(server_url, monkeypatch):
    """The default client sizes itself to the server's slots and waits out 429s: nothing is lost to load."""
    monkeypatch.setattr("m2rl_slime.sandbox.registry._cache", {})
    config = CodeConfig(sandbox_url=server_url)  # every client setting at its default
    metadata = {"unit_tests": {"inputs": ["20 22\n"], "outputs": ["42\n"]}}

    async def many():
        return await asyncio.gather(*[verify(ADD, None, metadata, config=config) for _ in range(200)])

    results = asyncio.run(many())
    assert [r.reason for r in results] == [Reason.OK] * 200, {r.reason for r in results}
