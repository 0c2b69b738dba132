"""`m2rl_opd` plugin setting: teacher routing, HTTP behaviour, loss options and task-reward handling.

slime receives it through `--custom-config-path` (a YAML whose top-level key `m2rl_opd` becomes
`args.m2rl_opd`). Example::

    m2rl_opd:
      teachers:                      # canonical domain -> the expert that scores it
        math:
          urls: [http://10.0.0.5:30001, http://10.0.0.6:30001]   # round-robin, fail over on retry
          name: qwen3-4b-math-rl
          serve: {model_path: /ckpt/qwen3-4b-math-rl-hf, port: 30001, gpus: [0]}
        code: {urls: [http://10.0.0.5:30002]}
      no_teacher: {agent: skip}      # domains in the data without a teacher: skip | error
      task_reward: keep              # keep | zero
      loss: {kl_coef: 1.0, kl_clip: 10.0, pg_coef: 0.0}

A domain that is neither in `teachers` nor in `no_teacher` is an error when a sample of it arrives:
there is never a default teacher. Nothing here imports torch or slime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from ..config import parse_dataclass, plugin_setting
from ..domains import SPECS, alias_table
from ..errors import ConfigError, UnknownNameError

NoTeacherPolicy = Literal["skip", "error"]
TaskReward = Literal["keep", "zero"]

# teacher_log_probs value marking "no teacher for this token" in custom-loss mode. A real log-prob is
# <= 0, so any value above SKIP_THRESHOLD can only be this sentinel (see docs/opd.md, "skip domains").
SKIP_SENTINEL = 1.0
SKIP_THRESHOLD = 0.5

SETTING_KEY = "m2rl_opd"


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """How `python -m m2rl_slime.opd serve-teachers` starts this teacher's SGLang server.

    Attributes:
        model_path: HF checkpoint of the expert (exported from its RL run).
        port: Port the server listens on; must be the port of one of the teacher's `urls`.
        gpus: GPU indices for CUDA_VISIBLE_DEVICES; None assigns the next `tp` free GPUs in order.
        tp: Tensor-parallel size (`--tp-size`), i.e. GPUs per server.
        host: Bind address.
        mem_fraction_static: SGLang `--mem-fraction-static` (None leaves SGLang's default).
        extra_args: Further `sglang.launch_server` arguments, passed verbatim.
    """

    model_path: str
    port: int
    gpus: tuple[int, ...] | None = None
    tp: int = 1
    host: str = "0.0.0.0"
    mem_fraction_static: float | None = 0.8
    extra_args: tuple[str, ...] = ()

    def validate(self) -> None:
        if not self.model_path:
            raise ConfigError("serve.model_path is empty")
        if not 0 < self.port < 65536:
            raise ConfigError(f"serve.port {self.port} is not a TCP port (1..65535)")
        if self.tp < 1:
            raise ConfigError(f"serve.tp must be >= 1, got {self.tp}")
        if self.gpus is not None:
            if len(self.gpus) != self.tp:
                raise ConfigError(f"serve.gpus {list(self.gpus)} must list exactly tp={self.tp} GPU(s)")
            if len(set(self.gpus)) != len(self.gpus) or min(self.gpus) < 0:
                raise ConfigError(f"serve.gpus {list(self.gpus)} must be distinct non-negative indices")
        if self.mem_fraction_static is not None and not 0 < self.mem_fraction_static <= 1:
            raise ConfigError(f"serve.mem_fraction_static must be in (0, 1], got {self.mem_fraction_static}")


@dataclass(frozen=True, slots=True)
class TeacherConfig:
    """One expert teacher: one or more SGLang servers serving the same checkpoint.

    Attributes:
        urls: Base URLs (`http://host:port`; a trailing `/generate` is accepted). Requests go round-robin;
            a retry moves on to the next URL.
        name: Name used in logs and errors (defaults to the serve checkpoint's basename, else the domain).
        max_concurrency: In-flight requests per teacher in one rollout process (None: the global setting).
        serve: How to start this teacher's server on this node (optional).
    """

    urls: tuple[str, ...]
    name: str | None = None
    max_concurrency: int | None = None
    serve: ServeConfig | None = None

    def validate(self) -> None:
        if not self.urls:
            raise ConfigError("urls is empty: give at least one http://host:port of an SGLang server")
        for url in self.urls:
            base_url(url)
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.serve is not None:
            ports = {urlsplit(base_url(u)).port for u in self.urls}
            if self.serve.port not in ports:
                raise ConfigError(f"serve.port {self.serve.port} is the port of none of urls {list(self.urls)}")


@dataclass(frozen=True, slots=True)
class LossConfig:
    """Options of `m2rl_slime.opd.opd_loss` (custom-loss mode only; upstream mode uses --opd-kl-coef).

    Attributes:
        kl_coef: Weight of the reverse-KL distillation term.
        kl_clip: Clip each token's log-ratio log p_student - log p_teacher to [-kl_clip, kl_clip] in the
            gradient coefficient (None: no clipping).
        pg_coef: Weight of slime's own policy-gradient loss (task-reward advantages) mixed in (0: pure OPD).
    """

    kl_coef: float = 1.0
    kl_clip: float | None = None
    pg_coef: float = 0.0

    def validate(self) -> None:
        if self.kl_coef < 0 or self.pg_coef < 0:
            raise ConfigError(f"loss.kl_coef and loss.pg_coef must be >= 0, got {self.kl_coef}, {self.pg_coef}")
        if self.kl_coef == 0 and self.pg_coef == 0:
            raise ConfigError("loss.kl_coef and loss.pg_coef are both 0: the loss would be identically zero")
        if self.kl_clip is not None and self.kl_clip <= 0:
            raise ConfigError(f"loss.kl_clip must be > 0 (or null for no clipping), got {self.kl_clip}")


@dataclass(frozen=True, slots=True)
class OPDConfig:
    """The `m2rl_opd` plugin setting (see the module docstring for an example).

    Attributes:
        teachers: Canonical domain -> its teacher.
        no_teacher: Canonical domain -> `skip` (no KL term for its samples) or `error` (stop the step).
        timeout_s: Total time allowed for one teacher request (connect + prefill + transfer).
        connect_timeout_s: Time allowed to open a connection.
        max_retries: Retries after the first attempt on connection errors, timeouts, HTTP 408/429/5xx.
        backoff_s: First retry delay; doubles per retry, with jitter in [0.5, 1] x the delay.
        backoff_max_s: Cap of one retry delay.
        max_concurrency: Default in-flight requests per teacher in one rollout process.
        task_reward: `keep` the domain reward router's task reward, or `zero` it (pure distillation:
            the hook sets reward 0 so the reward model is not even called for training samples).
        loss: Options of the custom loss.
        health_endpoint: Path polled by `wait-teachers` (SGLang: `/health_generate` runs a 1-token decode).
    """

    teachers: dict[str, TeacherConfig] = field(default_factory=dict)
    no_teacher: dict[str, NoTeacherPolicy] = field(default_factory=dict)
    timeout_s: float = 300.0
    connect_timeout_s: float = 10.0
    max_retries: int = 4
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    max_concurrency: int = 64
    task_reward: TaskReward = "keep"
    loss: LossConfig = field(default_factory=LossConfig)
    health_endpoint: str = "/health_generate"

    def validate(self) -> None:
        if not self.teachers:
            raise ConfigError("teachers is empty: map at least one domain to a teacher")
        for section in ("teachers", "no_teacher"):
            for domain in getattr(self, section):
                _check_canonical(domain, section)
        both = sorted(set(self.teachers) & set(self.no_teacher))
        if both:
            raise ConfigError(f"domain(s) {', '.join(both)} appear in both teachers and no_teacher")
        if self.timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise ConfigError("timeout_s and connect_timeout_s must be > 0")
        if self.max_retries < 0 or self.backoff_s < 0 or self.backoff_max_s < self.backoff_s:
            raise ConfigError("need max_retries >= 0 and 0 <= backoff_s <= backoff_max_s")
        if self.max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be >= 1, got {self.max_concurrency}")
        if not self.health_endpoint.startswith("/"):
            raise ConfigError(f"health_endpoint must start with '/', got {self.health_endpoint!r}")
        _check_serve_resources(self.teachers)

    def teacher_name(self, domain: str) -> str:
        """Display name of the teacher of `domain` (which must have one)."""
        teacher = self.teachers[domain]
        if teacher.name:
            return teacher.name
        if teacher.serve is not None:
            return teacher.serve.model_path.rstrip("/").rsplit("/", 1)[-1]
        return domain

    def concurrency(self, domain: str) -> int:
        """In-flight request bound of the teacher of `domain`."""
        return self.teachers[domain].max_concurrency or self.max_concurrency


def base_url(url: str) -> str:
    """Normalise a teacher URL to `scheme://host:port` (a trailing `/generate` or `/` is dropped).

    Raises:
        ConfigError: not an http(s) URL with a host, or it has another path, a query or a fragment.
    """
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    if path == "/generate":
        path = ""
    if parts.scheme not in ("http", "https") or not parts.hostname or path or parts.query or parts.fragment:
        raise ConfigError(f"teacher URL {url!r} must look like http://host:port (optionally ending in /generate)")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port == -1:
        raise ConfigError(f"teacher URL {url!r} has an invalid port")
    return f"{parts.scheme}://{parts.netloc}"


def load_opd_config(args: Any) -> OPDConfig:
    """Parse `args.m2rl_opd` (set by `--custom-config-path`) into an OPDConfig.

    Raises:
        ConfigError: the setting is missing or invalid (the message names the key).
    """
    raw = plugin_setting(args, SETTING_KEY)
    if not raw:
        raise ConfigError(
            f"{SETTING_KEY} is not set: put an `{SETTING_KEY}:` section (teachers, no_teacher, ...) into the "
            "YAML given to --custom-config-path"
        )
    return parse_dataclass(OPDConfig, raw, f"--custom-config-path: {SETTING_KEY}")


def _check_canonical(domain: str, section: str) -> None:
    if domain in SPECS:
        return
    aliases = alias_table()
    if domain in aliases:
        raise ConfigError(f"{section}: {domain!r} is an alias of {aliases[domain]!r}; use the canonical domain name")
    raise UnknownNameError(f"domain in {section}", domain, SPECS)


def _check_serve_resources(teachers: dict[str, TeacherConfig]) -> None:
    """Two served teachers on this node may not share a port or an explicitly assigned GPU."""
    ports: dict[int, str] = {}
    gpus: dict[int, str] = {}
    for domain, teacher in teachers.items():
        if teacher.serve is None:
            continue
        other = ports.setdefault(teacher.serve.port, domain)
        if other != domain:
            raise ConfigError(f"teachers {other!r} and {domain!r} both serve on port {teacher.serve.port}")
        for gpu in teacher.serve.gpus or ():
            other = gpus.setdefault(gpu, domain)
            if other != domain:
                raise ConfigError(f"teachers {other!r} and {domain!r} are both assigned GPU {gpu}")
