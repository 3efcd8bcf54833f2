"""Settings, one class per process role, read from the environment and ``.env``.

The bot fails fast only on what the bot needs and the worker only on what the worker
needs. Errors come out as one line naming the variable (see :func:`load`).

Longer than most modules on purpose (about 900 lines), and still one concern: every
setting of the project is declared here, once, so that one file answers what can be
configured and what it defaults to (``tests/test_names.py`` fails on a second
declaration). Splitting it by role would scatter the one table a reader wants.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError as PydanticSettingsError
from redis.connection import parse_url

from process import allowlist
from process.exceptions import SettingsError
from process.repo_names import is_repo_name, is_repo_pattern

ENV_PREFIX = "AGENTS_"
#: What a change may not touch unless ``.agents.yml`` allows it: CI workflows, and the
#: files that say how the repository is built and checked (a change to them would run
#: with the next run's trust).
DEFAULT_PROTECTED_PATHS = (".github/workflows/**", ".agents.yml", ".devcontainer/**")


def _split(value: Any) -> Any:
    """``a, b ,c`` -> ``["a", "b", "c"]``; lists pass through."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _pairs(value: Any) -> Any:
    """``C1=acme/api, C2=acme/web`` -> ``{"C1": "acme/api", "C2": "acme/web"}``."""
    if not isinstance(value, str):
        return value
    pairs: dict[str, str] = {}
    for item in _split(value):
        key, sep, val = item.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise ValueError(f"expected comma-separated KEY=VALUE pairs, got {item!r}")
        pairs[key.strip()] = val.strip()
    return pairs


def _json_object(value: Any) -> Any:
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError as exc:
            raise ValueError(f"expected a JSON object ({exc})") from None
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object")
    return value


def _hosts(value: Any) -> Any:
    return list(allowlist.parse_hosts(_split(value)))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)b?\s*$", re.IGNORECASE)


def seconds_of(value: str) -> float:
    """``90``, ``90s``, ``30m``, ``24h``, ``7d`` in seconds."""
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"expected a duration like 3600, 30m, 24h or 7d, got {value!r}")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def bytes_of(value: str) -> int:
    """``512m``, ``20g``, ``1t`` (or a plain number of bytes) in bytes."""
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"expected a size like 512m, 20g or 1t, got {value!r}")
    unit = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    return int(float(match.group(1)) * unit[match.group(2).lower()])


def _checked(parse: Any) -> Any:
    def check(value: Any) -> Any:
        parse(str(value))
        return str(value).strip()

    return check


CommaList = Annotated[list[str], NoDecode, BeforeValidator(_split)]
HostList = Annotated[list[str], NoDecode, BeforeValidator(_hosts)]
Duration = Annotated[str, BeforeValidator(_checked(seconds_of))]
Size = Annotated[str, BeforeValidator(_checked(bytes_of))]
CommaPairs = Annotated[dict[str, str], NoDecode, BeforeValidator(_pairs)]


class Section(BaseModel):
    """A group of settings, each declared once, here.

    The role classes below (:class:`BotSettings`, :class:`WorkerSettings`) inherit the
    sections they read, which is where the environment comes in; a part of the program
    takes the section it needs as a plain model, made from the role's settings by
    :meth:`of` with the same field names. So a setting has one name, one default and
    one description, wherever it is used.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @classmethod
    def of(cls, settings: BaseModel) -> Self:
        """This section's view of ``settings`` (a role's settings or a larger section)."""
        return cls.model_validate({name: getattr(settings, name) for name in cls.model_fields})


# -- both roles ---------------------------------------------------------------------


class StoreSettings(Section):
    """Where the queue and the run records live, and for how long."""

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias="REDIS_URL",
        description="Redis holding the queue, run records and event logs",
    )
    queue: str = Field("agents", description="RQ queue the bot enqueues to and workers listen on")
    run_retention_days: PositiveInt = Field(
        30, description="days a finished run's record and events are kept"
    )
    job_timeout: PositiveInt = Field(
        7200,
        description="seconds an RQ job may run before RQ kills it; above the agent's wall "
        "clock plus checks plus the CI watch",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        """A URL redis-py can connect with, checked here so a typo ends the command with
        one line naming REDIS_URL (its password masked), not a traceback later."""
        shown = re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", value)[:200]
        if value.partition("://")[0].lower() not in ("redis", "rediss", "unix"):
            raise ValueError(
                f"expected a URL like redis://host:6379/0 (or rediss://, unix://), got {shown!r}"
            )
        try:
            parse_url(value)  # type: ignore[no-untyped-call]
        except ValueError as exc:
            raise ValueError(f"{exc}, got {shown!r}") from None
        return value

    @property
    def run_retention_seconds(self) -> int:
        return self.run_retention_days * 86400


class LogSettings(Section):
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="log level: DEBUG, INFO, WARNING or ERROR"
    )
    log_format: Literal["json", "text"] = Field(
        "json",
        description="bot and worker logs: json (one object per line, with run_id, step and "
        "event) or text",
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="also serve /healthz and /metrics on this port (Socket Mode bot, worker); "
        "unset serves none",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="address AGENTS_METRICS_PORT listens on; loopback by default, 0.0.0.0 "
        "only where nothing untrusted can reach it (compose sets it inside the container)",
    )


class PeopleSettings(Section):
    """Who is who: the bot decides with these, the worker credits and checks with them."""

    user_map: CommaPairs = Field(
        default_factory=dict,
        description="Slack user id to GitHub login, e.g. U123=octocat,U456=hubot",
    )
    approvers: CommaList = Field(
        default_factory=list,
        description="Slack user ids who may approve, rework or cancel any run",
    )


# -- the bot ------------------------------------------------------------------------


class SlackSettings(Section):
    slack_bot_token: SecretStr = Field(
        validation_alias="SLACK_BOT_TOKEN", description="bot token (xoxb-...), required"
    )
    slack_app_token: SecretStr | None = Field(
        None,
        validation_alias="SLACK_APP_TOKEN",
        description="app-level token (xapp-...); set it to run in Socket Mode",
    )
    slack_signing_secret: SecretStr | None = Field(
        None,
        validation_alias="SLACK_SIGNING_SECRET",
        description="signing secret; required in HTTP mode (no app token)",
    )
    slack_api_url: str = Field(
        "https://slack.com/api/",
        validation_alias="SLACK_API_URL",
        description="Slack Web API base URL (point it at the local emulator for tests)",
    )
    bot_port: int = Field(3000, ge=1, le=65535, description="HTTP-mode port for /slack/events")
    slash_command: str = Field(
        "/agents",
        validation_alias="AGENTS_COMMAND",
        pattern=r"^/[a-z0-9_-]+$",
        description="the slash command's name",
    )


class AdmissionSettings(Section):
    """Who may ask, where, and for which repositories."""

    allowed_repos: CommaList = Field(
        default_factory=list,
        description="repositories runs may target, owner/name or owner/*; empty allows any",
    )
    allowed_users: CommaList = Field(
        default_factory=list, description="Slack user ids who may ask; empty allows anyone"
    )
    allowed_channels: CommaList = Field(
        default_factory=list,
        description="channel ids the bot answers in (DMs always); empty allows all",
    )
    channel_repos: CommaPairs = Field(
        default_factory=dict,
        description="default repository per channel, e.g. C123=acme/api,C456=acme/web",
    )


class WebhookSettings(Section):
    """GitHub's webhooks, on the bot's HTTP server (``POST /github/events``)."""

    github_webhook_secret: SecretStr | None = Field(
        None,
        validation_alias="GITHUB_WEBHOOK_SECRET",
        description="the secret GitHub signs webhook deliveries with (X-Hub-Signature-256); "
        "set it to accept POST /github/events",
    )


# -- the worker ---------------------------------------------------------------------


class GitHubSurfaceSettings(Section):
    """Runs driven from GitHub (webhooks): mentions in comments and labelled issues."""

    github_channel: str | None = Field(
        None,
        pattern=r"^[CGD][A-Z0-9_]+$",
        description="Slack channel id where runs started on GitHub get their thread (a "
        "labelled issue, a mention in an issue comment); unset, GitHub starts no runs",
    )
    github_label: str = Field(
        "agents", min_length=1, max_length=50, description="the issue label that starts a run"
    )
    github_mention: str = Field(
        "@agents",
        pattern=r"^@[A-Za-z0-9][A-Za-z0-9-]*(\[bot\])?$",
        description="the mention that talks to the bot in a GitHub comment",
    )


class ModelSettings(Section):
    """Which model backend answers, with what key, at what prices."""

    model_backend: Literal["anthropic", "replay"] = Field(
        "anthropic", description="anthropic (real model) or replay (a recorded transcript)"
    )
    anthropic_api_key: SecretStr | None = Field(
        None,
        validation_alias="ANTHROPIC_API_KEY",
        description="model API key; required when AGENTS_MODEL_BACKEND=anthropic",
    )
    anthropic_base_url: str | None = Field(
        None,
        validation_alias="ANTHROPIC_BASE_URL",
        description="override the Messages API URL (a proxy, or a local fake in tests)",
    )
    replay_transcript: Path | None = Field(
        None,
        description="transcript file, or a directory of them (chosen by request and "
        "iteration), for AGENTS_MODEL_BACKEND=replay",
    )
    prices: Annotated[dict[str, dict[str, float]], NoDecode, BeforeValidator(_json_object)] = Field(
        default_factory=dict,
        description="JSON price overrides per model, USD per million tokens: "
        '{"model": {"input": 3, "output": 15, "cache_write": 3.75, "cache_read": 0.3}}',
    )


Role = Literal["planner", "builder", "debugger", "reviewer", "summarizer"]
ROLE_NAMES: tuple[Role, ...] = ("planner", "builder", "debugger", "reviewer", "summarizer")


def _no_model(value: Any) -> Any:
    """An empty variable means "no fallback model"."""
    return None if isinstance(value, str) and not value.strip() else value


Fallback = Annotated[str | None, BeforeValidator(_no_model)]


class ModelRoles(Section):
    """Which model plays each role, and which takes over when it is overloaded (529),
    keeps failing (5xx after the retries) or refuses. An empty fallback means none.

    A frontier model plans, debugs and reviews, a strong one builds, a fast one
    summarizes. The reviewer runs on another model than the builder by default, for
    a second opinion; set them the same to turn that off.
    """

    model_planner: str = Field(
        "claude-opus-5-5", description="model that explores read-only and writes the plan"
    )
    model_planner_fallback: Fallback = Field(
        "claude-sonnet-5-5", description="model that plans when the planner's is unavailable"
    )
    model_builder: str = Field("claude-sonnet-5-5", description="model that writes the change")
    model_builder_fallback: Fallback = Field(
        "claude-opus-5-5", description="model that builds when the builder's is unavailable"
    )
    model_debugger: str = Field(
        "claude-opus-5-5",
        description="model that looks for the root cause of a failure the fix rounds repeat",
    )
    model_debugger_fallback: Fallback = Field(
        "claude-sonnet-5-5", description="model that debugs when the debugger's is unavailable"
    )
    model_reviewer: str = Field(
        "claude-opus-5-5",
        description="model that reviews the diff (and the specialist reviews); another "
        "model than the builder's by default, for a second opinion",
    )
    model_reviewer_fallback: Fallback = Field(
        "claude-sonnet-5-5", description="model that reviews when the reviewer's is unavailable"
    )
    model_summarizer: str = Field("claude-haiku-5-5", description="model that writes summaries")
    model_summarizer_fallback: Fallback = Field(
        "claude-haiku-4-5", description="model that summarizes when the summarizer's is unavailable"
    )

    def for_role(self, role: Role) -> str:
        model: str = getattr(self, f"model_{role}")
        return model

    def fallback_for(self, role: Role) -> str | None:
        """The role's fallback model; None when there is none, or it is the same model."""
        fallback: str | None = getattr(self, f"model_{role}_fallback")
        return fallback if fallback and fallback != self.for_role(role) else None


class AgentLimits(Section):
    """The circuit breakers of a run's agent passes (every role's, in one iteration).
    Each is checked before every model call, so none is overshot by more than the one
    call that crossed it. At the turn or dollar cap the run pauses and asks its
    requester to extend it (up to ``max_dollars_hard``); the others end the run."""

    max_turns: PositiveInt = Field(
        40,
        description="most model turns in one iteration of a run, every role's passes "
        "together; then the run pauses and asks to extend",
    )
    max_tokens: PositiveInt = Field(
        3_000_000,
        description="most tokens in one iteration of a run: input, output, cache reads and writes",
    )
    max_dollars: PositiveFloat = Field(
        5.0,
        description="most US dollars one iteration of a run may spend before it pauses "
        "and asks to extend",
    )
    wall_clock_seconds: PositiveFloat = Field(
        1800, description="most seconds the agent passes of one job may take, tools included"
    )
    no_progress_turns: PositiveInt = Field(
        5, description="turns that repeat themselves or change nothing before the agent stops"
    )
    max_dollars_hard: PositiveFloat = Field(
        50.0,
        description="the operator's hard cap in US dollars per iteration of a run: asking "
        "to extend AGENTS_MAX_DOLLARS can never go past it",
    )

    @model_validator(mode="after")
    def _hard_cap(self) -> Self:
        if self.max_dollars > self.max_dollars_hard:
            raise ValueError(
                f"AGENTS_MAX_DOLLARS: {self.max_dollars:g} is above the hard cap "
                f"AGENTS_MAX_DOLLARS_HARD={self.max_dollars_hard:g}; lower it or raise the cap"
            )
        return self


class ConversationSettings(Section):
    """How big one model call may get."""

    max_output_tokens: PositiveInt = Field(8192, description="max_tokens of each model response")
    context_tokens: PositiveInt = Field(
        120_000,
        description="prompt size in tokens above which old tool output leaves the conversation",
    )


class ForgeSettings(Section):
    """Where branches and pull requests go, and the credentials to put them there."""

    forge: Literal["github", "local"] = Field(
        "github", description="github, or local (a bare repository plus PR records)"
    )
    github_token: SecretStr | None = Field(
        None,
        validation_alias="GITHUB_TOKEN",
        description="token for pushes and PRs; with AGENTS_FORGE=github, this or a GitHub App",
    )
    github_app_id: PositiveInt | None = Field(
        None,
        description="GitHub App id: the worker mints an installation token per job "
        "(instead of GITHUB_TOKEN; with AGENTS_GITHUB_APP_PRIVATE_KEY)",
    )
    github_app_private_key: SecretStr | None = Field(
        None,
        description="the GitHub App's private key (PEM; \\n escapes allowed)",
    )
    github_app_private_key_file: Path | None = Field(
        None, description="a file holding the GitHub App's private key, instead of the key itself"
    )
    github_app_installation_id: PositiveInt | None = Field(
        None,
        description="the App's installation to use; unset looks it up per repository",
    )
    github_api_url: str = Field(
        "https://api.github.com", description="GitHub REST API URL (GitHub Enterprise: .../api/v3)"
    )
    local_forge_dir: Path = Field(
        Path.home() / ".local" / "share" / "agents" / "forge",
        description="where AGENTS_FORGE=local keeps bare repositories and PR records",
    )


class PullRequestSettings(Section):
    """What a pull request looks like and what Approve does to it."""

    draft_prs: bool = Field(True, description="open pull requests as drafts")
    approve_action: Literal["ready", "merge"] = Field(
        "ready", description="what Approve does: ready (mark ready for review) or merge"
    )
    merge_method: Literal["merge", "squash", "rebase"] = Field(
        "squash", description="how Approve merges when AGENTS_APPROVE_ACTION=merge"
    )
    require_github_write: bool = Field(
        False,
        description="Approve also needs write access on GitHub, through AGENTS_USER_MAP",
    )


class BlueprintSettings(Section):
    """The blueprint's knobs: fix rounds, escalation, protected paths, CI and recovery."""

    fix_rounds: int = Field(
        2, ge=0, le=10, description="fix rounds for failing checks, unless .agents.yml says"
    )
    escalation: Literal["draft", "stop"] = Field(
        "draft",
        description="when checks still fail: draft (publish a draft PR saying so) or stop",
    )
    protected_paths: CommaList = Field(
        default_factory=lambda: list(DEFAULT_PROTECTED_PATHS),
        description="globs a change may not touch unless .agents.yml allows them; "
        "a symbolic link into one, or replacing a directory above one, counts",
    )
    ci_timeout_seconds: float = Field(
        1800, ge=0, description="most seconds to watch the PR's CI; 0 skips watching"
    )
    ci_poll_seconds: PositiveFloat = Field(15, description="seconds between CI polls")
    ci_settle_seconds: float = Field(
        60, ge=0, description="seconds without any CI check before concluding there is none"
    )
    ci_fix: bool = Field(False, description="on failed CI, run one fix round from the CI log")
    max_attempts: PositiveInt = Field(
        3, description="times a run is started after its worker died before it is failed"
    )
    heartbeat_seconds: PositiveInt = Field(
        30, description="a running run whose heartbeat is this old is taken as abandoned"
    )
    slack_url: str = Field(
        "https://slack.com", description="Slack workspace URL, for links back to threads"
    )


_PLAN_RULE = re.compile(r"^(always|never|(chars|paths)>\d+)$")
SEVERITIES = ("info", "low", "medium", "high", "critical")


def _plan_when(value: Any) -> Any:
    """``chars>1500, paths>8`` -> ``"chars>1500,paths>8"``, each item checked."""
    if not isinstance(value, str):
        return value
    items = [item.replace(" ", "").lower() for item in _split(value)]
    for item in items:
        if not _PLAN_RULE.match(item):
            raise ValueError(
                f"expected always, never, or a comma-separated list of chars>N and "
                f"paths>N, got {item!r}"
            )
    if not items:
        raise ValueError("expected always, never, or chars>N and paths>N")
    return ",".join(items)


class FactorySettings(Section):
    """The factory's roles: when a run plans first, when a debugger is called, which
    specialists review, and how long a budget question waits for an answer."""

    plan_when: Annotated[str, NoDecode, BeforeValidator(_plan_when)] = Field(
        "chars>1500,paths>8",
        description="when a run plans before it builds, besides `@agents plan …` and "
        ".agents.yml `plan: always`: always, never, or chars>N (the request is longer) "
        "and paths>N (it names more files)",
    )
    debug_after_rounds: int = Field(
        1,
        ge=0,
        le=10,
        description="fix rounds that fail on the same failure before a debugger looks for "
        "its root cause; 0 never calls it",
    )
    specialist_rules: Annotated[dict[str, list[str]], NoDecode, BeforeValidator(_json_object)] = (
        Field(
            default_factory=dict,
            description="JSON: more path globs per specialist reviewer (security, migrations), "
            'added to the built-in rules, e.g. {"security": ["**/iam/**"]}',
        )
    )
    block_severity: Literal["info", "low", "medium", "high", "critical"] = Field(
        "high",
        description="a specialist finding this severe or worse blocks publishing; milder "
        "ones become review comments on the PR",
    )
    budget_ask_timeout: PositiveInt = Field(
        86400,
        description="seconds a run paused at its budget waits for Extend or Stop before it "
        "stops by itself",
    )


class SandboxSettings(Section):
    sandbox_image: str = Field("agents-sandbox:latest", description="default image for sandboxes")
    allowed_images: CommaList = Field(
        default_factory=list,
        description="images .agents.yml may choose with `image:`, as glob patterns "
        "(e.g. agents-sandbox:*,registry.acme.dev/ci/*); AGENTS_SANDBOX_IMAGE always; "
        "empty allows no other",
    )
    sandbox_backend: Literal["docker", "local", "auto"] = Field(
        "docker",
        description="docker, local (development only: does NOT isolate) or auto",
    )
    egress_allow: HostList = Field(
        default_factory=lambda: list(allowlist.DEFAULT_ALLOW),
        description="hosts a setup with network may reach through the egress proxy; "
        ".example.com allows a domain and every name under it. A repository's "
        "network.allow can only narrow it",
    )


class EgressSettings(Section):
    """The engine's egress proxy: the only way out for a setup that has network."""

    egress_deny: CommaList = Field(
        default_factory=list,
        description="addresses or CIDR ranges the egress proxy never connects to, beyond "
        "private, loopback, link-local and metadata ranges and this host's own addresses",
    )
    egress_proxy: str = Field(
        "agents-egress-proxy",
        min_length=1,
        description="name of the egress proxy container; the worker creates it when a setup "
        "first needs network, or uses the one docker-compose.yml runs",
    )
    egress_proxy_image: str = Field(
        "agents-egress-proxy:latest",
        min_length=1,
        description="image the egress proxy is created from (`agents sandbox build egress`)",
    )
    egress_network: str = Field(
        "agents-egress",
        min_length=1,
        description="ordinary network the egress proxy reaches the outside from, which no "
        "sandbox joins; docker-compose.yml names it from the same setting",
    )
    egress_subnets: str = Field(
        "10.213.0.0/16",
        description="IPv4 range each setup sandbox's own internal network takes a /28 from",
    )

    @field_validator("egress_subnets")
    @classmethod
    def _egress_pool(cls, value: str) -> str:
        try:
            pool = ipaddress.ip_network(value.strip())
        except ValueError as exc:
            raise ValueError(f"expected an IPv4 range like 10.213.0.0/16 ({exc})") from None
        if pool.version != 4 or pool.prefixlen > 28:
            raise ValueError("expected an IPv4 range of /28 or larger, like 10.213.0.0/16")
        return str(pool)

    @field_validator("egress_deny")
    @classmethod
    def _egress_ranges(cls, value: list[str]) -> list[str]:
        try:
            return [str(ipaddress.ip_network(item, strict=False)) for item in value]
        except ValueError as exc:
            raise ValueError(f"expected addresses or CIDR ranges ({exc})") from None


class EnvironmentSettings(Section):
    """Repository environments (docs/environments.md): how long one stays current, how
    many warm sandboxes wait on it, and how much disk they may all take."""

    env_max_age: Duration = Field(
        "24h",
        description="age (e.g. 30m, 24h, 7d) after which a repository's environment is "
        "rebuilt in the background; runs keep using it meanwhile",
    )
    warm_pool: int = Field(
        1,
        ge=0,
        le=16,
        description="started, idle sandboxes kept per recently used environment for runs "
        "to claim; 0 turns the warm pool off",
    )
    env_disk_budget: Size = Field(
        "20g",
        description="disk the environment images may take (e.g. 20g); beyond it the least "
        "recently used go first, never one a live run uses",
    )


class HousekeepingSettings(Section):
    """What a worker keeps on its disk, and how often it cleans up after others."""

    cache_dir: Path = Field(
        Path.home() / ".cache" / "agents",
        description="worker-side repository mirrors and workspaces",
    )
    reap_interval: PositiveInt = Field(
        300, description="seconds between passes of the worker's sandbox reaper"
    )
    recovery_interval: PositiveInt = Field(
        60, description="seconds between a worker's sweeps for abandoned runs"
    )


class StatsSettings(Section):
    """The worker's stats pass: merged PRs from the forge, survival from the mirror."""

    stats_interval: PositiveInt = Field(
        900,
        description="seconds between stats passes (outcomes, merged PRs, line survival); "
        "one worker runs each pass",
    )
    stats_retention_days: PositiveInt = Field(
        400, description="days a run's outcome is kept for stats (its record expires sooner)"
    )


# -- the roles ----------------------------------------------------------------------

_ROLE_CONFIG = SettingsConfigDict(
    env_prefix=ENV_PREFIX,
    env_file=".env",
    extra="ignore",
    populate_by_name=True,
)


class CommonSettings(BaseSettings, StoreSettings, LogSettings):
    """What every role reads: where Redis is, how long to keep runs, how to log."""

    model_config = _ROLE_CONFIG


class BotSettings(
    CommonSettings, SlackSettings, AdmissionSettings, PeopleSettings, WebhookSettings
):
    """The Slack surface. Holds Slack tokens and nothing else secret."""

    model_config = _ROLE_CONFIG

    @model_validator(mode="after")
    def _check_tokens(self) -> BotSettings:
        if not self.slack_bot_token.get_secret_value().startswith("xoxb-"):
            raise ValueError("SLACK_BOT_TOKEN: expected a bot token starting with xoxb-")
        app = self.slack_app_token
        if app is not None and not app.get_secret_value().startswith("xapp-"):
            raise ValueError("SLACK_APP_TOKEN: expected an app-level token starting with xapp-")
        if app is None and self.slack_signing_secret is None:
            raise ValueError(
                "SLACK_SIGNING_SECRET: required in HTTP mode; "
                "set it, or set SLACK_APP_TOKEN for Socket Mode"
            )
        for channel, repo in self.channel_repos.items():
            if not is_repo_name(repo):
                raise ValueError(
                    f"AGENTS_CHANNEL_REPOS: expected owner/name for channel {channel}, got {repo!r}"
                )
        for repo in self.allowed_repos:
            if not is_repo_pattern(repo):
                raise ValueError(
                    f"AGENTS_ALLOWED_REPOS: expected owner/name or owner/*, got {repo!r}"
                )
        return self


class OperatorSettings(CommonSettings, PeopleSettings, BlueprintSettings):
    """The ``agents`` verbs an operator runs on one run (rework, approve, cancel, resume,
    logs): the store, who may decide, and how often a run may be resumed. No secrets."""

    model_config = _ROLE_CONFIG


class WorkerSettings(
    CommonSettings,
    PeopleSettings,
    ModelSettings,
    ModelRoles,
    AgentLimits,
    ConversationSettings,
    ForgeSettings,
    PullRequestSettings,
    BlueprintSettings,
    FactorySettings,
    SandboxSettings,
    EgressSettings,
    EnvironmentSettings,
    HousekeepingSettings,
    StatsSettings,
    GitHubSurfaceSettings,
):
    """The brain. Holds the model key and the forge token, never a Slack token."""

    model_config = _ROLE_CONFIG

    @model_validator(mode="after")
    def _check_backends(self) -> WorkerSettings:
        if self.model_backend == "anthropic" and self.anthropic_api_key is None:
            raise ValueError(
                "ANTHROPIC_API_KEY: required when AGENTS_MODEL_BACKEND=anthropic "
                "(or set AGENTS_MODEL_BACKEND=replay)"
            )
        self._check_github_app()
        return self

    def _check_github_app(self) -> None:
        """``GITHUB_TOKEN`` or a GitHub App (id and key), exactly one, for the github forge."""
        if self.github_token is not None and not self.github_token.get_secret_value():
            self.github_token = None  # compose passes an unset token as ""
        key_file = self.github_app_private_key_file
        if key_file is not None:
            if self.github_app_private_key is not None:
                raise ValueError(
                    "AGENTS_GITHUB_APP_PRIVATE_KEY_FILE: set it or "
                    "AGENTS_GITHUB_APP_PRIVATE_KEY, not both"
                )
            try:
                self.github_app_private_key = SecretStr(key_file.read_text())
            except OSError as exc:
                raise ValueError(
                    f"AGENTS_GITHUB_APP_PRIVATE_KEY_FILE: cannot read {key_file} ({exc.strerror})"
                ) from None
        key = self.github_app_private_key
        if key is not None:
            pem = key.get_secret_value().strip()
            if "\n" not in pem and "\\n" in pem:
                pem = pem.replace("\\n", "\n")
            if not (pem.startswith("-----BEGIN") and "PRIVATE KEY-----" in pem):
                raise ValueError(
                    "AGENTS_GITHUB_APP_PRIVATE_KEY: expected the App's PEM private key "
                    "(-----BEGIN ... PRIVATE KEY-----)"
                )
            self.github_app_private_key = key = SecretStr(pem)
        app = self.github_app_id is not None or key is not None
        if self.forge != "github":
            return
        if app and self.github_token is not None:
            raise ValueError(
                "GITHUB_TOKEN: set either GITHUB_TOKEN or a GitHub App "
                "(AGENTS_GITHUB_APP_ID and AGENTS_GITHUB_APP_PRIVATE_KEY), not both"
            )
        if self.github_app_id is not None and key is None:
            raise ValueError(
                "AGENTS_GITHUB_APP_PRIVATE_KEY: required with AGENTS_GITHUB_APP_ID "
                "(or set AGENTS_GITHUB_APP_PRIVATE_KEY_FILE)"
            )
        if key is not None and self.github_app_id is None:
            raise ValueError("AGENTS_GITHUB_APP_ID: required with AGENTS_GITHUB_APP_PRIVATE_KEY")
        if not app and self.github_token is None:
            raise ValueError(
                "GITHUB_TOKEN: required when AGENTS_FORGE=github, or a GitHub App "
                "(AGENTS_GITHUB_APP_ID and AGENTS_GITHUB_APP_PRIVATE_KEY); "
                "or set AGENTS_FORGE=local"
            )


ROLES: dict[str, type[CommonSettings]] = {"bot": BotSettings, "worker": WorkerSettings}

S = TypeVar("S", bound=CommonSettings)


def env_name(name: str, field: FieldInfo) -> str:
    """The environment variable a field is read from."""
    alias = field.validation_alias
    return alias if isinstance(alias, str) else ENV_PREFIX + name.upper()


def _describe(cls: type[CommonSettings], err: Any) -> SettingsError:
    loc = err.get("loc") or ()
    if not loc:
        # A model validator: its message already starts with "VARIABLE: ".
        message = str(err.get("msg", "invalid settings")).removeprefix("Value error, ")
        variable, _, expected = message.partition(": ")
        return SettingsError(variable, expected or message)
    key = str(loc[0])
    variable = key
    secret = False
    for name, field in cls.model_fields.items():
        if key in (name, field.validation_alias):
            variable = env_name(name, field)
            secret = "SecretStr" in repr(field.annotation)
    if err.get("type") == "missing":
        return SettingsError(variable, "required but not set")
    expected = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    expected = expected[0].lower() + expected[1:]
    if not secret and "input" in err and ", got " not in expected:
        expected += f", got {err['input']!r}"
    return SettingsError(variable, expected)


def _source_error(cls: type[CommonSettings], exc: PydanticSettingsError) -> SettingsError:
    """pydantic-settings' own parse failure ('error parsing value for field "x"')."""
    match = re.search(r'field "([^"]+)"', str(exc))
    name = match.group(1) if match else "?"
    field = cls.model_fields.get(name)
    variable = env_name(name, field) if field else name
    return SettingsError(variable, "could not be parsed; check its format in .env.example")


def problems(cls: type[CommonSettings], **overrides: Any) -> list[SettingsError]:
    """Every problem with the settings for ``cls``, each naming its variable."""
    try:
        cls(**overrides)
    except ValidationError as exc:
        return [_describe(cls, err) for err in exc.errors()]
    except PydanticSettingsError as exc:
        return [_source_error(cls, exc)]
    return []


def load(cls: type[S], **overrides: Any) -> S:
    """Build settings or raise :class:`SettingsError` describing the first problem."""
    try:
        return cls(**overrides)
    except PydanticSettingsError as exc:
        raise _source_error(cls, exc) from None
    except ValidationError as exc:
        errors = exc.errors()
        error = _describe(cls, errors[0])
        if len(errors) > 1:
            error = SettingsError(
                error.variable, f"{error.expected} (and {len(errors) - 1} more problems)"
            )
        raise error from None


def all_fields() -> list[tuple[str, FieldInfo, list[str]]]:
    """Every setting once, with the roles that read it, section by section in the order
    they are declared here."""
    out: list[tuple[str, FieldInfo, list[str]]] = []
    for section in Section.__subclasses__():
        roles = [role for role, cls in ROLES.items() if issubclass(cls, section)]
        if not roles:
            continue
        out.extend(
            (env_name(name, field), field, roles) for name, field in section.model_fields.items()
        )
    return out


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "(required)"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return ""
    if isinstance(value, Path) and str(value).startswith(str(Path.home())):
        return "~/" + str(value.relative_to(Path.home()))
    return str(value)


def markdown_table() -> str:
    """The README's configuration table; a test checks the README against it."""
    lines = ["| variable | roles | default | meaning |", "|---|---|---|---|"]
    for var, field, roles in all_fields():
        default = _default(field)
        lines.append(
            f"| `{var}` | {', '.join(roles)} | {f'`{default}`' if default else ''} "
            f"| {field.description} |"
        )
    return "\n".join(lines) + "\n"


def env_example() -> str:
    """The contents of ``.env.example``: every setting, one comment line each."""
    out = ["# Settings for agents. Copy to .env and fill in what your roles need.", ""]
    for var, field, roles in all_fields():
        default = _default(field)
        out.append(f"# {field.description} [{', '.join(roles)}]")
        if default == "(required)" or not default:
            out.append(f"# {var}=")
        else:
            out.append(f"# {var}={default}")
    return "\n".join(out) + "\n"
