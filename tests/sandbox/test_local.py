"""The embedded executor against hostile and awkward programs (each from the issue's bad-input list).

Every case must be judged by its limits, leave no process and no file behind, and not disturb a
well-behaved program running at the same time. Runs through the embedded backend (a private server
process), which is how the executor is always used. No test asserts wall-clock times (the machine is
shared); deadlines are judged by the CPU time the sandbox reports.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket

import pytest

from m2rl_slime.sandbox.base import RunSpec

from .conftest import assert_no_leftover_processes, run, uid_range


def test_plain_program_reads_stdin(embedded):
    result, _ = run(embedded, "import sys\nprint(sum(map(int, sys.stdin.read().split())))", stdin="1 2 3\n")
    assert result.status == "Success" and result.run_result.stdout == "6\n"
    assert result.network_isolated is True


def test_isolation_facts(embedded):
    probe = """
import os, socket, sys
print(os.getuid(), os.getgid(), os.getgroups())
print(sorted(os.environ))
print(os.getcwd(), os.environ["HOME"])
print(sorted(p for p in os.listdir("/proc") if p.isdigit()), os.getpid(), os.path.exists("/proc/self/status"))
print(sorted(os.listdir("/tmp")), socket.gethostname())
print(sorted(n for _, n in socket.if_nameindex()))
"""
    result, _ = run(embedded, probe)
    assert result.status == "Success", result
    uid_line, env_line, where, own_only, tmp, nics = result.run_result.stdout.splitlines()
    uid, gid, groups = uid_line.split(" ", 2)
    assert int(uid) in uid_range(embedded) and int(gid) == int(uid) and groups == "[]"  # never root
    allowed = {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE",
               "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "LC_CTYPE"}  # fmt: skip
    assert set(eval(env_line)) <= allowed  # scrubbed environment
    assert where == "/tmp /tmp"
    assert own_only == "['1'] 1 True"  # PID 1 of its own namespace; its own /proc shows only its processes
    assert "main.py" in tmp and tmp.endswith(" sandbox")
    assert nics == "['lo']"


def test_infinite_loop_times_out(embedded):
    result, _ = run(embedded, "while True:\n    pass\n", cpu_timeout=1.0, run_timeout=4.0)
    assert result.status == "Failed" and result.run_result.status == "TimeLimitExceeded"
    assert result.run_result.cpu_time >= 1.0
    assert_no_leftover_processes(embedded)


def test_sleeping_children_are_killed_with_the_program(embedded):
    code = "import os, time\nfor _ in range(3):\n    if os.fork() == 0:\n        os.setsid()\n        time.sleep(60)\nprint('parent done')\n"
    result, _ = run(embedded, code, run_timeout=5.0)
    assert result.status == "Success" and result.run_result.stdout.count("parent done") == 1
    assert_no_leftover_processes(embedded)


def test_fork_bomb_is_contained_and_does_not_disturb_a_neighbour(embedded):
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    good = "print(sum(range(10)))"

    async def both():
        return await asyncio.gather(
            embedded.run(RunSpec(bomb, run_timeout=2.0)), embedded.run(RunSpec(good, run_timeout=5.0))
        )

    bad, fine = asyncio.run(both())
    assert bad.status == "Failed"
    assert fine.status == "Success" and fine.run_result.stdout == "45\n"
    assert_no_leftover_processes(embedded)


def test_memory_bomb_fails_fast(embedded):
    bomb = "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024 * 1024))\n"
    result, _ = run(embedded, bomb, run_timeout=10.0, memory_limit_mb=256)
    assert result.status == "Failed" and result.run_result.status == "Finished"
    assert "MemoryError" in result.run_result.stderr
    result, _ = run(embedded, "x = bytearray(10**12)", memory_limit_mb=256)
    assert "MemoryError" in result.run_result.stderr


def test_ten_megabytes_of_output_come_back_whole(embedded):
    code = "import sys\nsys.stdout.write('x' * 10_000_000)\n"
    result, _ = run(embedded, code, run_timeout=10.0)
    assert result.status == "Success" and len(result.run_result.stdout) == 10_000_000
    assert not result.truncated


def test_output_of_exactly_the_cap_is_accepted_one_byte_more_is_not(embedded):
    cap = 16 << 20
    exact, _ = run(embedded, f"import sys\nsys.stdout.write('x' * {cap})\n")
    assert exact.status == "Success" and not exact.truncated and len(exact.run_result.stdout) == cap
    over, _ = run(embedded, f"import sys\nsys.stdout.write('x' * {cap + 1})\n")
    assert over.truncated and len(over.run_result.stdout) == cap


def test_stderr_is_capped_on_its_own_and_never_fails_a_program(embedded):
    code = "import sys\nfor _ in range(300):\n    sys.stderr.write('w' * 100_000)\nprint(42)\n"  # 30 MB of stderr
    result, _ = run(embedded, code)
    assert result.status == "Success" and result.run_result.stdout == "42\n", result.run_result.status
    assert not result.truncated
    assert 0 < len(result.run_result.stderr) <= 64 * 1024


def test_endless_output_hits_the_cap_not_the_deadline(embedded):
    result, _ = run(embedded, "while True:\n    print('y' * 1000)\n", run_timeout=20.0)
    assert result.truncated and result.status == "Failed"
    assert result.run_result.status == "Finished"  # stopped by the cap (EFBIG), long before its CPU limit
    assert len(result.run_result.stdout) == 16 << 20
    assert_no_leftover_processes(embedded)


def test_sys_exit_zero_keeps_the_output(embedded):
    result, _ = run(embedded, "import sys\nprint(42)\nsys.exit(0)\n")
    assert result.status == "Success" and result.run_result.stdout == "42\n"


def test_stderr_does_not_fail_a_program(embedded):
    result, _ = run(embedded, "import sys\nprint('warning', file=sys.stderr)\nprint(7)\n")
    assert result.status == "Success" and result.run_result.stdout == "7\n"
    assert result.run_result.stderr == "warning\n"


def test_reading_stdin_past_eof_does_not_hang(embedded):
    result, _ = run(embedded, "a = input()\nb = input()\nprint(a, b)\n", stdin="only one line\n", run_timeout=5.0)
    assert result.status == "Failed" and "EOFError" in result.run_result.stderr
    assert result.run_result.status == "Finished"
    result, _ = run(embedded, "import sys\nprint(repr(sys.stdin.read()), repr(sys.stdin.read()))\n")
    assert result.run_result.stdout == "'' ''\n"


def test_sockets_cannot_reach_the_host_or_the_internet(embedded):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    code = f"""
import socket
for target in [("127.0.0.1", {port}), ("1.1.1.1", 80), ("10.0.0.1", 80)]:
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(target)
        print("CONNECTED", target)
    except OSError as exc:
        print("blocked", type(exc).__name__)
try:
    socket.getaddrinfo("example.com", 80)
    print("RESOLVED")
except OSError:
    print("no dns")
"""
    try:
        result, _ = run(embedded, code, run_timeout=10.0)
        with pytest.raises(OSError):
            listener.accept()
    finally:
        listener.close()
    assert "CONNECTED" not in result.run_result.stdout and "RESOLVED" not in result.run_result.stdout
    assert result.run_result.stdout.count("blocked") == 3


def test_writes_outside_the_work_dir_fail_and_leave_nothing(embedded, tmp_path):
    targets = ["/etc/m2rl_probe", "/var/tmp/m2rl_probe", "/root/m2rl_probe", "/usr/m2rl_probe", str(tmp_path / "x")]
    code = f"""
import os
for path in {targets!r}:
    try:
        open(path, "w").write("pwned")
        print("WROTE", path)
    except OSError as exc:
        print("denied", type(exc).__name__)
"""
    result, _ = run(embedded, code)
    assert "WROTE" not in result.run_result.stdout
    assert all(not os.path.exists(path) for path in targets)


def test_deleting_the_parent_dir_harms_nothing(embedded, tmp_path):
    sentinel = tmp_path / "keep.txt"
    sentinel.write_text("precious")
    code = f"""
import os, shutil
removed = 0
for parent in ["..", "/tmp/..", os.path.expanduser("~/.."), {str(tmp_path)!r}]:
    for name in (os.listdir(parent) if os.path.isdir(parent) else []):
        path = os.path.join(parent, name)
        try:
            os.rmdir(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)
            removed += 1
        except OSError:
            pass
shutil.rmtree({str(tmp_path)!r}, ignore_errors=True)
print("removed", removed)
print("done")
"""
    result, _ = run(embedded, code, run_timeout=20.0)
    assert result.run_result.stdout == "removed 0\ndone\n"
    assert sentinel.read_text() == "precious"
    again, _ = run(embedded, "print('still works')")
    assert again.status == "Success"


def test_no_file_survives_into_the_next_run(embedded):
    dirty = "import os\nopen('/tmp/junk', 'w').write('x')\nos.mkdir('/tmp/d')\nos.chmod('/tmp/d', 0)\nopen('/dev/shm/s', 'w').write('x')\nprint('ok')\n"
    result, _ = run(embedded, dirty)
    assert result.status == "Success", result
    keep = embedded.health()  # the interpreter may live under /tmp: its mount point stays, nothing else
    for _ in range(3):  # sequential runs reuse the slot that was freed last
        clean, _ = run(embedded, "import os\nprint(sorted(os.listdir('/tmp')), os.listdir('/dev/shm'))\n")
        listed, shm = clean.run_result.stdout.rsplit("] ", 1)
        assert "junk" not in listed and "'d'" not in listed and "main.py" in listed and shm == "[]\n", keep
    assert not os.path.exists("/tmp/junk") and not os.path.exists("/dev/shm/s")


def test_non_utf8_output_is_decoded_not_fatal(embedded):
    result, _ = run(embedded, "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe ok\\n')\n")
    assert result.status == "Success"
    assert result.run_result.stdout == "\ufffd\ufffd ok\n"


def test_files_and_fetch_files(embedded):
    result, _ = run(
        embedded,
        "data = open('in/data.txt').read()\nopen('out.txt', 'w').write(data.upper())\n",
        files={"in/data.txt": "aGVsbG8="},
        fetch_files=("out.txt", "missing.txt"),
    )
    assert result.status == "Success" and result.files == {"out.txt": "SEVMTE8="}


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
def test_cpp_compiles_and_runs(embedded):
    code = "#include <iostream>\nint main(){long long a,b;std::cin>>a>>b;std::cout<<a+b<<std::endl;}\n"
    result, _ = run(embedded, code, language="cpp", stdin="2 40\n", compile_timeout=30.0)
    assert result.status == "Success", result
    assert result.compile_result.return_code == 0 and result.run_result.stdout == "42\n"
    broken, _ = run(embedded, "int main( {", language="cpp", compile_timeout=30.0)
    assert broken.status == "Failed" and broken.run_result is None
    assert broken.compile_result.return_code != 0 and "error" in broken.compile_result.stderr
