"""Harness for driving slime's own rollout code with our hooks: a fake SGLang server, a tiny world (tokenizer,
prepared prompt files, an HF checkpoint dir), recipes rendered by our launcher and parsed by slime's parser,
and a `RolloutManager` without Ray.

- `FakeSGLang` answers what slime's rollout code sends to SGLang and its router: `POST /generate`
  (generation with `output_token_logprobs`, and teacher scoring with `input_token_logprobs` when the payload
  has `logprob_start_len`), `POST /abort_request`, `GET /workers`, `GET /v1/loads`. A generation waits for
  its domain's latency; `/abort_request` ends every request in flight with `finish_reason: abort` and the
  first half of its tokens, as SGLang returns what it has generated. A request whose input is a prompt plus
  such a partial response (slime's `--partial-rollout`) gets the rest of it at once.
- `World` writes the files a recipe points at (`$WORK_DIR/data/<domain>.jsonl`, the eval sets, the HF dir
  with the tokenizer) for four training domains (math, science, if, agent; code would need the sandbox) and
  the recipes' eval sets, LiveCodeBench's included (two problems prepared by `m2rl_slime.data.lcb`, graded
  in the sandbox).
- `parse_recipe` renders a shipped recipe with `--set` overrides through `m2rl_slime.launch` and parses the
  argv with slime's `parse_args` (Megatron's CUDA validation skipped, as slime_parse_check does).
- `Manager` is slime's `RolloutManager` class (`__ray_actor_class__`) built without its SGLang servers and
  Ray lock: the hooks are loaded the way its `__init__` loads them, `generate`/`eval`/`save`/`load` are
  slime's methods, and `ray.put` in the DP split is an identity.

Imported by test_slime_rollout.py (which skips when slime is not importable).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "agent"))
sys.path.insert(0, str(REPO / "tests"))

from agent_harness import build_tokenizer, call_text, turn  # noqa: E402
from loopback import Loopback  # noqa: E402
from slime_parse_check import QWEN3_4B_HF_CONFIG as HF_CONFIG  # noqa: E402

DOMAINS = ("math", "science", "if", "agent")
EVAL_ONLY = ("code",)  # eval sets only (LiveCodeBench): their rewards need the sandbox
AGENT_TURNS = [  # demo task 1 of examples/agent_demo.jsonl: reply to Tomas's launch-checklist e-mail
    turn("Find it.", call_text("email_search_emails", query="launch checklist tomas")),
    turn("Reply.", call_text("email_reply_email", email_id="00000002", body="Looks good, ship it.")),
    turn("Done.", "I replied to Tomas."),
]


AGENT_GIVES_UP = turn("No.", "I cannot help with that.")


def teacher_log_prob(position: int, token: int) -> float:
    return -0.05 - 0.1 * ((token + 3 * position) % 7)


def tool_schemas() -> list[dict]:
    from m2rl_slime.agent.tools import TOOLS

    names = ("email_search_emails", "email_reply_email")
    return [
        {"type": "function", "function": {k: v for k, v in TOOLS[n].schema().items() if k != "type"}} for n in names
    ]


@dataclass
class World:
    """The files a recipe's `WORK_DIR` points at."""

    root: Path
    tokenizer: Any = None
    rows: dict[str, list[dict]] = field(default_factory=dict)

    @classmethod
    def build(cls, root: Path, prompts_per_domain: int = 6) -> World:
        world = cls(root)
        demo = json.loads((REPO / "examples" / "agent_demo.jsonl").read_text().splitlines()[0])
        tools = tool_schemas()
        for i in range(prompts_per_domain):
            a, b = 3 + i, 4 + 2 * i
            world.rows.setdefault("math", []).append(
                row(f"[math] #{i} What is {a}+{b}?", str(a + b), {"domain": "math"})
            )
            world.rows.setdefault("science", []).append(
                row(f"[science] #{i} Which letter? A) x B) y C) z D) w", "B", {"domain": "science"})
            )
            ifmeta = {"domain": "if", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
            world.rows.setdefault("if", []).append(row(f"[if] #{i} Describe a cat without commas.", None, ifmeta))
            messages = [dict(m) for m in demo["prompt"]]
            messages[-1]["content"] = f"[agent] #{i} " + messages[-1]["content"]
            world.rows.setdefault("agent", []).append(
                {
                    "prompt": messages,
                    "label": None,
                    "metadata": {**demo["metadata"], "domain": "agent"},
                    "tools": tools,
                }
            )
        data = root / "data"
        (data / "eval").mkdir(parents=True, exist_ok=True)
        for domain, rows in world.rows.items():
            write_jsonl(data / f"{domain}.jsonl", rows)
        write_jsonl(data / "eval" / "aime24.jsonl", world.rows["math"][:2])
        write_jsonl(data / "eval" / "gpqa_diamond.jsonl", world.rows["science"][:2])
        write_jsonl(data / "eval" / "ifbench.jsonl", world.rows["if"][:2])
        write_jsonl(data / "eval" / "ifeval.jsonl", world.rows["if"][2:4])
        lcb = [lcb_problem(i) for i in range(2)]
        write_jsonl(data / "eval" / "lcb_v6.jsonl", lcb)
        corpus = [json.dumps(r) for rows in world.rows.values() for r in rows] + AGENT_TURNS * 5
        corpus += ["<think>\nok\n</think>\n\nAnswer: 12", "Email replied successfully."] * 10
        corpus += [json.dumps(r) for r in lcb] + [default_response("code", "", k) for k in (0, 1)] * 5
        world.tokenizer = build_tokenizer(corpus)
        hf = root / "checkpoints" / "sft_hf"
        world.tokenizer.save_pretrained(hf)
        (hf / "config.json").write_text(json.dumps(HF_CONFIG))
        (root / "checkpoints" / "sft").mkdir(parents=True, exist_ok=True)
        return world

    def prompt_files(self, order: tuple[str, ...] = DOMAINS) -> str:
        """A `--set plugin.m2rl_data.prompt_files=...` value (YAML flow mapping) in the given pool order."""
        return "{" + ", ".join(f"{d}: {self.root / 'data' / f'{d}.jsonl'}" for d in order) + "}"


def lcb_problem(i: int) -> dict:
    """A prepared LiveCodeBench row (stdin: print a + b), made from LiveCodeBench's format by our reader."""
    from m2rl_slime.data.lcb import lcb_row

    tests = [{"input": f"{i} {k}\n", "output": f"{i + k}\n", "testtype": "stdin"} for k in (1, 2)]
    problem = {"question_id": f"lcb{i}", "question_content": f"[code] #{i} Read a and b; print a + b.",
               "contest_date": "2025-03-01T00:00:00", "public_test_cases": json.dumps(tests[:1]),
               "private_test_cases": json.dumps(tests[1:]), "metadata": "{}", "platform": "atcoder"}  # fmt: skip
    return lcb_row(problem, "test6", 6, "release v6").to_json()


def row(text: str, label: Any, metadata: dict) -> dict:
    return {"prompt": [{"role": "user", "content": text}], "label": label, "metadata": metadata, "tools": []}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def parse_recipe(name: str, world: World, sets: list[str], run_name: str) -> Any:
    """slime's args for recipe `name` rendered with `sets`, parsed by slime's own parser."""
    import slime.backends.megatron_utils.arguments as megatron_arguments
    import slime.utils.arguments as slime_arguments

    from m2rl_slime.agent.cli import demo_csv_dir
    from m2rl_slime.launch.cluster import write_files
    from m2rl_slime.launch.recipe import load_recipe
    from m2rl_slime.launch.render import render

    environ = {"WORK_DIR": str(world.root), "NNODES": "1", "HAS_NVLINK": "0", "AGENT_CSV_DIR": demo_csv_dir()}
    sets = [f"RUN_NAME={run_name}", *sets]
    recipe = load_recipe(REPO / "recipes" / f"{name}.yaml", sets, environ=environ, computed={"M2RL_DIR": str(REPO)})
    rendered = render(recipe, has_nvlink=False)
    write_files(rendered.files)
    original = megatron_arguments.validate_args
    argv = sys.argv
    try:
        megatron_arguments.validate_args = lambda args: None  # Megatron's CUDA checks; slime's own run
        sys.argv = ["train.py", *rendered.args]
        args = slime_arguments.parse_args()
    finally:
        megatron_arguments.validate_args = original
        sys.argv = argv
    args.use_tensorboard = args.use_wandb = False  # no tracking backend on this machine
    return args


class FakeSGLang(Loopback):
    """A loopback SGLang server + router in its own thread (see the module docstring).

    Args:
        tokenizer: The world's tokenizer (requests are decoded to find the domain, responses encoded).
        respond: ``respond(domain, prompt_text, k) -> text`` for the k-th request (0-based) of a prompt; the
            default answers correctly on even k and wrongly on odd k.
        latency: Domain -> seconds a generation takes, or ``latency(domain, prompt_text) -> seconds`` (a
            continuation of a partial response takes none).

    Attributes:
        on_agent_response: Called (in the server thread) before each agent turn is answered.
        abort_first_agent_turns: That many agent turns are answered with an SGLang abort (half the tokens).
        agent_alternates: Every other episode of an agent task gives up at once (reward 0), so agent groups
            have reward variance; otherwise every episode follows `AGENT_TURNS` (reward 1).
        requests: Every generation request: domain, time, input ids, whether it continued a partial one.
    """

    def __init__(self, tokenizer: Any, respond: Callable | None = None, latency: dict | Callable | None = None):
        self.tokenizer = tokenizer
        self.respond = respond or default_response
        self.latency = latency if callable(latency) else dict(latency or {})
        self.on_agent_response: Callable[[dict], None] | None = None
        self.abort_first_agent_turns = 0
        self.agent_alternates = True
        self.requests: list[dict] = []
        self.aborts: list[float] = []
        self.per_prompt: Counter = Counter()
        self._inflight: set = set()
        self._partials: dict[tuple, list[list[int]]] = {}  # prompt + partial ids -> full ids (FIFO)
        self._init_loopback()
        self.port = 0

    def _delay(self, domain: str, text: str) -> float:
        if callable(self.latency):
            return float(self.latency(domain, text))
        return float(self.latency.get(domain, 0.0))

    client_max_size = 1024**2  # aiohttp's default

    def routes(self, app: Any) -> None:
        app.router.add_post("/generate", self._generate)
        app.router.add_post("/abort_request", self._abort)
        app.router.add_get("/workers", self._workers)
        app.router.add_get("/v1/loads", self._loads)

    async def _workers(self, request):
        from aiohttp import web

        return web.json_response({"workers": [{"url": f"http://127.0.0.1:{self.port}"}]})

    async def _loads(self, request):
        from aiohttp import web

        return web.json_response({"num_reqs": sum(not e.is_set() for e in self._inflight)})

    async def _abort(self, request):
        from aiohttp import web

        self.aborts.append(time.monotonic())
        for event in self._inflight:
            event.set()
        return web.json_response({})

    async def _generate(self, request):
        from aiohttp import web

        payload = await request.json()
        ids = payload["input_ids"]
        if "logprob_start_len" in payload:  # a teacher scoring the sample
            start = payload["logprob_start_len"]
            entries = [[None, ids[start], None]] + [
                [teacher_log_prob(p, ids[p]), ids[p], None] for p in range(start + 1, len(ids))
            ]
            return web.json_response({"text": "", "meta_info": {"input_token_logprobs": entries}})
        text = self.tokenizer.decode(ids)
        domain = next((d for d in (*DOMAINS, *EVAL_ONLY) if f"[{d}]" in text), "unknown")
        waiting = self._partials.get(tuple(ids))
        continued = waiting.pop(0) if waiting else None
        record = {"domain": domain, "t": time.monotonic(), "input_ids": ids, "continued": continued is not None}
        self.requests.append(record)
        if continued is not None:  # the rest of a response aborted earlier (slime's partial rollout)
            full, out = continued, continued[len(ids) :]
        else:
            if domain == "agent":
                done = record["turn"] = text.count("<tool_response>")
                answer = AGENT_TURNS[min(done, len(AGENT_TURNS) - 1)]
                if done == 0:
                    if self.agent_alternates and self.per_prompt[text] % 2:
                        answer = AGENT_GIVES_UP  # every other episode of a task fails it: GRPO signal
                    self.per_prompt[text] += 1
            else:
                answer = self.respond(domain, text, self.per_prompt[text])
                self.per_prompt[text] += 1
            out = self.tokenizer.encode(answer, add_special_tokens=False) + [self.tokenizer.eos_token_id]
            full = ids + out
        event = asyncio.Event()
        self._inflight.add(event)
        finish = "stop"
        try:
            if domain == "agent" and self.abort_first_agent_turns > 0:
                self.abort_first_agent_turns -= 1
                event.set()
            delay = 0.0 if continued is not None else self._delay(domain, text)
            if delay and not event.is_set():
                try:
                    await asyncio.wait_for(event.wait(), delay)
                except asyncio.TimeoutError:
                    pass
            if event.is_set():
                out, finish = out[: len(out) // 2], "abort"
                if domain != "agent":
                    self._partials.setdefault(tuple(ids + out), []).append(full)
            budget = payload["sampling_params"]["max_new_tokens"]
            if finish == "stop" and len(out) > budget:
                out, finish = out[:budget], "length"
            if domain == "agent" and self.on_agent_response is not None:
                self.on_agent_response(record)
        finally:
            self._inflight.discard(event)
        record["finish"] = finish
        pairs = [[-0.01 * (i + 1), t, None] for i, t in enumerate(out)]
        meta = {"output_token_logprobs": pairs, "finish_reason": {"type": finish}, "completion_tokens": len(out)}
        return web.json_response({"text": self.tokenizer.decode(out), "meta_info": meta})


def default_response(domain: str, prompt: str, k: int) -> str:
    """Right on even k, wrong on odd k (so every group has reward variance)."""
    right = k % 2 == 0
    if domain == "math":
        a, b = (int(x) for x in prompt.split("What is ")[1].split("?")[0].split("+"))
        return f"<think>\nadd\n</think>\n\nAnswer: {a + b if right else a + b + 1}"
    if domain == "science":
        return f"<think>\nhm\n</think>\n\nAnswer: {'B' if right else 'C'}"
    if domain == "code":
        return f"<think>\nio\n</think>\n\n```python\na, b = map(int, input().split())\nprint(a {'+' if right else '-'} b)\n```"
    return "<think>\nok\n</think>\n\n" + ("A cat is soft and quiet." if right else "A cat is soft, and quiet.")


class Manager:
    """slime's `RolloutManager` methods on an instance built like its `__init__`, without servers or Ray."""

    def __new__(cls, args: Any, monkeypatch: Any) -> Any:
        import slime.ray.rollout as rollout_module
        from slime.ray.rollout import RolloutManager
        from slime.utils.misc import load_function

        manager_cls = RolloutManager.__ray_actor_class__
        manager = manager_cls.__new__(manager_cls)
        manager.args, manager.pg, manager.servers, manager._health_monitors = args, None, {}, []
        manager.data_source = load_function(args.data_source_path)(args)
        manager.generate_rollout = load_function(args.rollout_function_path)
        manager.eval_generate_rollout = load_function(args.eval_function_path)
        manager.custom_reward_post_process_func = None
        if args.custom_reward_post_process_path is not None:
            manager.custom_reward_post_process_func = load_function(args.custom_reward_post_process_path)
        manager.custom_convert_samples_to_train_data_func = None
        manager.rollout_id = -1
        manager.train_parallel_config = {
            "dp_size": 2,
            "cp_size": 1,
            "vpp_size": 1,
            "microbatch_group_size_per_vp_stage": 1,
        }
        monkeypatch.setattr(rollout_module, "ray", SimpleNamespace(put=lambda value, **kw: value))
        return manager


def connect(args: Any, server: FakeSGLang) -> None:
    """Point slime's args at the fake router and reset slime's per-process rollout state."""
    from slime.rollout.sglang_rollout import GenerateState
    from slime.utils.http_utils import init_http_client

    args.sglang_router_ip, args.sglang_router_port = "127.0.0.1", server.port
    init_http_client(args)
    GenerateState.clear_instances()
