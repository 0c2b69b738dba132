"""bfcl-eval's own verdicts for `eval_agreement.py --only bfcl` (run by the bfcl-eval venv's python, never imported).

Usage: ``python bfcl_reference.py REQUESTS.jsonl`` prints one JSON verdict per request line. Requests:

- ``{"op": "ast", "category", "language", "functions", "possible", "response"}``: the response text goes
  through bfcl-eval's Qwen FC handler (``_parse_query_response_prompting`` then ``decode_ast``) and its AST
  checker (or its relevance rule for irrelevance/relevance categories), as ``bfcl evaluate`` does;
- ``{"op": "execute", "response"}``: the handler's ``decode_execute`` (multi-turn call strings);
- ``{"op": "java" | "js", "value", "type", "nested"}``: the reference literal converter's result.

The venv made by ``python -m m2rl_slime.eval bfcl-env`` holds bfcl-eval without its vendor SDKs; the modules
that the handler and checker import but never use on these paths (openai, requests, tenacity, the tree-sitter
parsers, the model registry: only ``underscore_to_dot`` is read, False as for Qwen3 FC models) are stubbed.
"""

import contextlib
import json
import sys
import types


def _stub(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module


class _Anything:
    def __init__(self, *args, **kwargs):
        pass


class _Decorators(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *a, **k: a[0] if len(a) == 1 and callable(a[0]) and not k else (lambda f: f)


class _Config:
    underscore_to_dot = False


def _install_stubs():
    for name in ("overrides", "openai", "requests", "filelock"):
        if name not in sys.modules:
            try:
                __import__(name)
            except ImportError:
                _stub(name, override=lambda f: f, final=lambda f: f, EnforceOverrides=type("E", (), {}),
                      OpenAI=_Anything, FileLock=_Anything)  # fmt: skip
    if "tenacity" not in sys.modules:
        try:
            __import__("tenacity")
        except ImportError:
            sys.modules["tenacity"] = _Decorators("tenacity")
    _stub("bfcl_eval.model_handler.parser.java_parser", parse_java_function_call=None)
    _stub("bfcl_eval.model_handler.parser.js_parser", parse_javascript_function_call=None)
    _stub("bfcl_eval.constants.model_config", MODEL_CONFIG_MAPPING={"m2rl/reference": _Config()})


class _Response:
    def __init__(self, text):
        choice = types.SimpleNamespace(text=text)
        self.choices = [choice]
        self.usage = types.SimpleNamespace(prompt_tokens=0, completion_tokens=0)


def main():
    _install_stubs()
    from bfcl_eval.constants.enums import Language
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.eval_checker.ast_eval.type_convertor.java_type_converter import java_type_converter
    from bfcl_eval.eval_checker.ast_eval.type_convertor.js_type_converter import js_type_converter
    from bfcl_eval.model_handler.local_inference.qwen_fc import QwenFCHandler
    from bfcl_eval.utils import is_empty_output, is_function_calling_format_output

    handler = QwenFCHandler.__new__(QwenFCHandler)
    languages = {"python": Language.PYTHON, "java": Language.JAVA, "javascript": Language.JAVASCRIPT}

    def ast(req):
        text = handler._parse_query_response_prompting(_Response(req["response"]))["model_responses"]
        try:
            decoded = handler.decode_ast(text, None, False)
        except Exception:
            decoded = None
        if req["kind"] in ("irrelevance", "relevance"):
            made_call = decoded is not None and not is_empty_output(decoded)
            return {"valid": made_call == (req["kind"] == "relevance")}
        if decoded is None:
            return {"valid": False, "error_type": "ast_decoder:decoder_failed"}
        if not is_function_calling_format_output(decoded):
            return {"valid": False, "error_type": "ast_decoder:decoder_wrong_output_format"}
        try:
            verdict = ast_checker(req["functions"], decoded, req["possible"], languages[req["language"]],
                                  req["category"], "m2rl_reference")  # fmt: skip
        except Exception as exc:
            return {"valid": None, "error_type": f"reference raised {type(exc).__name__}"}
        return {"valid": verdict["valid"], "error_type": verdict.get("error_type", "")}

    def execute(req):
        text = handler._parse_query_response_prompting(_Response(req["response"]))["model_responses"]
        try:
            return {"calls": handler.decode_execute(text, False)}
        except Exception:
            return {"calls": None}

    def convert(req, fn):
        try:
            args = (req["value"], req["type"]) + ((req["nested"],) if req.get("nested") else ())
            return {"value": repr(fn(*args))}
        except Exception as exc:
            return {"value": f"raise {type(exc).__name__}"}

    ops = {"ast": ast, "execute": execute, "java": lambda r: convert(r, java_type_converter),
           "js": lambda r: convert(r, js_type_converter)}  # fmt: skip
    out = sys.stdout
    with open(sys.argv[1], encoding="utf-8") as f, contextlib.redirect_stdout(sys.stderr):
        for line in f:  # the reference prints diagnostics on some inputs: keep them off the verdict stream
            request = json.loads(line)
            out.write(json.dumps(ops[request["op"]](request)) + "\n")


if __name__ == "__main__":
    main()
