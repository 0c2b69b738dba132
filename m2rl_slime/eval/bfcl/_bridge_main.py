"""The BFCL bridge process: run by the bfcl-eval venv's python, it talks JSON lines on stdin/stdout.

This file imports only the standard library and the API module (bfcl-eval's multi-turn checker module by
default); it never imports m2rl_slime, so it runs in an environment that has none of slime's packages.

Requests are one JSON object per line, ``{"id": N, "op": OP, ...}``; every request gets exactly one reply
``{"id": N, "ok": true, "result": ...}`` or ``{"id": N, "ok": false, "error": "..."}``. Ops:

- ``hello``: versions (python, bfcl-eval, the API module);
- ``open`` ``{"entry": {id, initial_config, involved_classes, long_context}}`` -> a session name: the API
  instances of one episode, created and loaded from the entry's initial configuration;
- ``execute`` ``{"session", "calls": [call strings]}`` -> ``{"results": [...]}``: what the model sees;
- ``close`` ``{"session"}``: drops the episode's instances;
- ``check`` ``{"entry": {id, initial_config, involved_classes}, "decoded": [[[call strings]]],
  "ground_truth": [[call strings]]}`` -> ``{"valid", "error_type", "error_message", "details"}``: the
  reference multi-turn checker's verdict.

The reference evaluates call strings with Python's ``eval``; here the API module's ``eval`` is replaced by one
that only calls a method of an API instance with literal arguments (anything else is reported as an
execution error, as the reference does for calls it cannot run), so a model-written string cannot run code.
``--api-module`` names another module with the same two functions (``execute_multi_turn_func_call`` and
``multi_turn_checker``), for tests; ``--api-path`` is put first on ``sys.path`` to import it.
"""

import argparse
import ast
import importlib
import json
import platform
import sys
import traceback

DEFAULT_MODULE = "bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker"


class _Unsupported(Exception):
    pass


def _guarded_eval(namespace):
    """An `eval` for the reference's executor: ``<instance>.<method>(<literals>)`` only."""

    def evaluate(source, *unused):
        tree = compile(source, "<string>", "eval", ast.PyCF_ONLY_AST)
        call = tree.body
        if not isinstance(call, ast.Call):
            raise _Unsupported("only function calls are executed")
        func = call.func
        if isinstance(func, ast.Name):
            raise NameError(f"name '{func.id}' is not defined")
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
            raise _Unsupported("only calls of the API's functions are executed")
        if func.attr.startswith("_"):
            raise _Unsupported("private methods are not executed")
        instance = namespace.get(func.value.id)
        if instance is None or not func.value.id.endswith("_instance"):
            raise NameError(f"name '{func.value.id}' is not defined")
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            raise _Unsupported("argument unpacking is not executed")
        try:
            args = [ast.literal_eval(a) for a in call.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise _Unsupported("only literal arguments are executed") from None
        return getattr(instance, func.attr)(*args, **kwargs)

    return evaluate


class Bridge:
    def __init__(self, module_name):
        self.module = importlib.import_module(module_name)
        self.execute_fn = self.module.execute_multi_turn_func_call
        self.check_fn = self.module.multi_turn_checker
        self.store = sys.modules[self.execute_fn.__module__]  # where the executor keeps its instances
        self.store.eval = _guarded_eval(self.store.__dict__)
        self.sessions = {}
        self.counter = 0

    def _name(self, prefix):
        self.counter += 1
        return f"m2rl_{prefix}{self.counter}"

    def _drop(self, model_name):
        for key in [k for k in vars(self.store) if k.startswith(model_name + "_") and k.endswith("_instance")]:
            delattr(self.store, key)

    def hello(self, req):
        try:
            from importlib.metadata import version

            bfcl_version = version("bfcl-eval")
        except Exception:
            bfcl_version = None
        return {"python": platform.python_version(), "bfcl_eval": bfcl_version, "api_module": self.module.__name__}

    def open(self, req):
        entry = req["entry"]
        name = self._name("s")
        self.sessions[name] = entry
        self.execute_fn([], entry.get("initial_config") or {}, entry["involved_classes"], name, entry["id"],
                        long_context=bool(entry.get("long_context")), is_evaL_run=False)  # fmt: skip
        return name

    def execute(self, req):
        entry = self.sessions.get(req["session"])
        if entry is None:
            raise KeyError(f"unknown session {req['session']!r} (the bridge was restarted?)")
        calls = req["calls"]
        if not isinstance(calls, list) or not all(isinstance(c, str) for c in calls):
            raise TypeError("calls must be a list of call strings")
        results, _ = self.execute_fn(calls, entry.get("initial_config") or {}, entry["involved_classes"],
                                     req["session"], entry["id"], long_context=bool(entry.get("long_context")),
                                     is_evaL_run=False)  # fmt: skip
        return {"results": [str(r) for r in results]}

    def close(self, req):
        if self.sessions.pop(req["session"], None) is not None:
            self._drop(req["session"])
        return None

    def check(self, req):
        entry = dict(req["entry"])
        name = self._name("c")
        try:
            verdict = self.check_fn(req["decoded"], req["ground_truth"], entry, entry["id"].rsplit("_", 1)[0], name)
        finally:
            self._drop(name)
        details = verdict.get("details")
        return {
            "valid": bool(verdict.get("valid")),
            "error_type": verdict.get("error_type", ""),
            "error_message": str(verdict.get("error_message", ""))[:2000],
            "details": json.dumps(details, default=str)[:4000] if details is not None else None,
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api-module", default=DEFAULT_MODULE)
    parser.add_argument("--api-path", action="append", default=[])
    parser.add_argument("--memory-mb", type=int, default=0, help="address-space limit of this process (0: none)")
    opts = parser.parse_args()
    if opts.memory_mb > 0:
        import resource

        limit = opts.memory_mb * 1024 * 1024
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ValueError, OSError):
            pass  # a lower hard limit is already in place
    sys.path[:0] = opts.api_path
    replies = sys.stdout
    sys.stdout = sys.stderr  # API code that prints must not corrupt the reply stream
    try:
        bridge = Bridge(opts.api_module)
    except Exception as exc:
        replies.write(json.dumps({"id": None, "ok": False, "error": f"cannot load {opts.api_module}: {exc!r}"}) + "\n")
        replies.flush()
        return 3
    ops = {"hello": bridge.hello, "open": bridge.open, "execute": bridge.execute, "close": bridge.close,
           "check": bridge.check}  # fmt: skip
    for line in sys.stdin:
        if not line.strip():
            continue
        req_id = None
        try:
            req = json.loads(line)
            req_id = req.get("id")
            if req.get("op") == "shutdown":
                reply = {"id": req_id, "ok": True, "result": None}
                replies.write(json.dumps(reply) + "\n")
                replies.flush()
                return 0
            reply = {"id": req_id, "ok": True, "result": ops[req["op"]](req)}
        except Exception as exc:
            reply = {"id": req_id, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
            traceback.print_exc(file=sys.stderr)
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
