"""A repository's own settings, from ``.agents.yml`` at its root, with safe defaults.

The file is data from the repository, so it is validated strictly: an unknown key or a
bad value becomes a :class:`RepoConfigError` whose message names the key and says what
is expected, for the run's thread. When no checks are configured they are detected.

It is parsed with limits first, so nothing in it can hold the worker (and its run's
heartbeat) for long: at most :data:`MAX_CONFIG_BYTES`, :data:`MAX_DEPTH` levels of
nesting, and :data:`MAX_NODES` values once every alias is expanded (a "billion laughs"
file is a few lines that expand to billions). The limits are checked on YAML's event
stream, which PyYAML produces without recursion and without building anything, before
the document is composed; a file over them is refused with a message saying which.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from process import allowlist
from process.exceptions import RepoConfigError

CONFIG_FILE = ".agents.yml"
MAX_CONFIG_BYTES = 64 * 1024
#: Nesting deeper than this is no configuration anyone writes.
MAX_DEPTH = 20
#: Values (scalars, lists, mappings) in the document with every alias expanded.
MAX_NODES = 10_000
#: Where checks write JUnit XML inside the sandbox: on /tmp, so it never enters the patch.
JUNIT_DIR = "/tmp/agents-checks"  # noqa: S108 - the sandbox's own tmpfs, not the host's


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckCommand(_Strict):
    name: str = Field(min_length=1, max_length=64)
    run: str = Field(min_length=1)
    #: A JUnit XML report the command writes, read after it finishes (and removed
    #: first), so no ``..``: the path names the file it means.
    junit: str | None = Field(None, min_length=1, max_length=512)
    timeout: int = Field(900, gt=0, le=6 * 3600)

    @field_validator("junit")
    @classmethod
    def _no_climbing(cls, value: str | None) -> str | None:
        if value is not None and ".." in value.split("/"):
            raise ValueError("a junit path may not contain `..`; name the file it means")
        return value


def _checks_shorthand(value: Any) -> Any:
    """Accept ``checks: "pytest -q"`` and ``checks: ["ruff check .", "pytest"]`` too."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return value
    taken = {item.get("name") for item in value if isinstance(item, dict)}
    checks = []
    for item in value:
        if isinstance(item, str):
            # Names tell checks apart (a base commit's failures are matched by name and
            # test), so `cargo test -p a` and `cargo test -p b` are not both `cargo test`.
            base = name = _name_for(item)
            count = 1
            while name in taken:
                count += 1
                name = f"{base[:60]} #{count}"
            taken.add(name)
            item = {"name": name, "run": item}
        checks.append(item)
    return checks


def _commands(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _name_for(command: str) -> str:
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    if words[:1] in (["python"], ["python3"]):
        words = words[2:] if words[1:2] == ["-m"] else words[1:]
    words = [w for w in words if not w.startswith("-") and "=" not in w]
    # `npm run lint`, `uv run mypy`, `bundle exec rspec`: the runner alone names nothing.
    length = 3 if words[1:2] in (["run"], ["exec"]) else 2
    return (" ".join(words[:length]) or command)[:64]


def _size(value: Any) -> Any:
    if value is None:
        return None
    text = str(value).strip().lower()
    if not re.fullmatch(r"\d+[kmg]?", text):
        raise ValueError("expected a size like 512m or 4g")
    return text


def _offline(value: bool) -> bool:
    if value:
        raise ValueError(
            "the agent and the checks never have network; only setup may "
            "(network: {setup: true}), through the egress proxy"
        )
    return value


def _hosts(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError("expected a list of host names, e.g. [pypi.org, files.pythonhosted.org]")
    return list(allowlist.parse_hosts(str(item) for item in value))


class NetworkPolicy(_Strict):
    """Network by phase: only setup may be online, through the egress proxy, and only
    when the repository asks. ``agent`` and ``checks`` exist to say no clearly."""

    setup: bool = False
    agent: Annotated[bool, AfterValidator(_offline)] = False
    checks: Annotated[bool, AfterValidator(_offline)] = False
    #: Narrows the operator's allow-list (AGENTS_EGRESS_ALLOW) for this repository;
    #: None keeps it whole.
    allow: Annotated[list[str] | None, BeforeValidator(_hosts)] = None


def _network(value: Any) -> Any:
    if isinstance(value, bool):
        return {"setup": value}
    return value


class RepoLimits(_Strict):
    """Per-repository overrides of the worker's limits; unset means the worker's value."""

    max_turns: int | None = Field(None, gt=0, le=500)
    max_dollars: float | None = Field(None, gt=0, le=1000)
    command_timeout: int | None = Field(None, gt=0, le=6 * 3600)
    memory: Annotated[str | None, BeforeValidator(_size)] = None
    #: A private /dev/shm of this size; none unless asked for (multiprocessing needs it).
    shm: Annotated[str | None, BeforeValidator(_size)] = None
    cpus: float | None = Field(None, gt=0, le=64)
    pids: int | None = Field(None, ge=64, le=65536)


class OnEditCheck(_Strict):
    """A fast check of one file, run after each edit or write of it by the builder.
    ``{file}`` stands for the file (passed as an argument, never pasted into the
    shell); ``files`` limits it to paths or names matching a glob (``*.py``)."""

    run: str = Field(min_length=1, max_length=500)
    files: str | None = Field(None, min_length=1, max_length=200)
    timeout: int = Field(60, gt=0, le=600)

    @field_validator("run")
    @classmethod
    def _names_the_file(cls, value: str) -> str:
        if "{file}" not in value:
            raise ValueError("expected the command to name the file as {file}")
        if "'{file}'" in value or '"{file}"' in value:
            raise ValueError("write {file} without quotes: the file is quoted for you")
        return value


def _on_edit_shorthand(value: Any) -> Any:
    """Accept ``on_edit: "ruff check {file}"`` and a list of strings too."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        return [{"run": item} if isinstance(item, str) else item for item in value]
    return value


def _relative_path(value: Any) -> Any:
    """A path inside the repository: relative, no ``..``, no NUL."""
    if not isinstance(value, str):
        return value
    parts = value.replace("\\", "/").split("/")
    if value.startswith("/") or ".." in parts or "\0" in value or not value.strip():
        raise ValueError("expected a path inside the repository, like docker/Dockerfile")
    return "/".join(p for p in parts if p not in ("", ".")) or "."


RepoPath = Annotated[str, BeforeValidator(_relative_path), Field(max_length=256)]


class EnvironmentConfig(_Strict):
    """How the repository's environment is built and kept (docs/environments.md)."""

    #: More files whose contents decide the environment (globs; ``*`` also matches
    #: ``/``), beside the detected lock files and manifests.
    key_files: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=50
    )
    #: Commands run instead of setup when the source moved but the key did not (e.g.
    #: ``pip install -e . --no-deps``).
    update: Annotated[list[str], BeforeValidator(_commands)] = Field(
        default_factory=list, max_length=20
    )
    #: A Dockerfile in the repository to build the environment's base image from, its
    #: build context (default: the repository's root) and build arguments.
    dockerfile: RepoPath | None = None
    context: RepoPath | None = None
    build_args: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)],
        Annotated[str, Field(max_length=4096)],
    ] = Field(default_factory=dict, max_length=64)
    #: Variables for setup and every command (``containerEnv`` of a devcontainer).
    env: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)],
        Annotated[str, Field(max_length=4096)],
    ] = Field(default_factory=dict, max_length=64)
    #: Where the setup came from: ``.agents.yml`` or the devcontainer (set by prepare).
    origin: Literal["agents.yml", "devcontainer"] = "agents.yml"
    #: Devcontainer properties that were ignored, for the thread (set by prepare).
    ignored: list[str] = Field(default_factory=list, max_length=64)


class RepoConfig(_Strict):
    setup: Annotated[list[str], BeforeValidator(_commands)] = Field(default_factory=list)
    checks: Annotated[list[CheckCommand], BeforeValidator(_checks_shorthand)] = Field(
        default_factory=list
    )
    image: str | None = None
    network: Annotated[NetworkPolicy, BeforeValidator(_network)] = Field(
        default_factory=NetworkPolicy
    )
    limits: RepoLimits = Field(default_factory=RepoLimits)
    fix_rounds: int = Field(2, ge=0, le=10)
    escalation: Literal["draft", "stop"] = "draft"
    #: Added to the worker's AGENTS_PROTECTED_PATHS (a repository cannot remove any).
    protected_paths: list[str] = Field(default_factory=list)
    allow_protected: list[str] = Field(default_factory=list)
    #: ``always``: every run plans first and waits for the plan's approval; ``auto``:
    #: when asked, or when the request is past the operator's AGENTS_PLAN_WHEN.
    plan: Literal["auto", "always"] = "auto"
    on_edit: Annotated[list[OnEditCheck], BeforeValidator(_on_edit_shorthand)] = Field(
        default_factory=list, max_length=10
    )
    environment: EnvironmentConfig = Field(default_factory=EnvironmentConfig)
    #: True when the checks below were detected rather than configured.
    detected: bool = False

    @property
    def has_environment(self) -> bool:
        """Whether there is anything to build: setup commands or a Dockerfile."""
        return bool(self.setup or self.environment.dockerfile)


#: Fields prepare fills in, never written in ``.agents.yml`` by hand.
_INTERNAL = frozenset({"detected", "origin", "ignored"})


def _where(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc if not isinstance(p, str) or not p.startswith("function-")]
    return ".".join(parts) or "(top level)"


def check_entry(kind: str, size: int) -> None:
    """Refuse a ``.agents.yml`` that is not a regular file, or too big to read: never
    ignore it and go on with the defaults."""
    if kind != "file":
        raise RepoConfigError(
            f"{CONFIG_FILE} is a {kind}, not a regular file, so it was not read; "
            "make it a plain file in the repository"
        )
    if size > MAX_CONFIG_BYTES:
        raise RepoConfigError(
            f"{CONFIG_FILE} is {size:,} bytes, over the {MAX_CONFIG_BYTES // 1024} KiB limit, "
            "so it was not read; keep it to the settings this page lists: "
            "setup, checks, image, network, limits"
        )


def check_bounds(text: str) -> None:
    """Refuse YAML nested deeper than :data:`MAX_DEPTH`, or with more than
    :data:`MAX_NODES` values once its aliases are expanded, from its event stream."""
    depth = 0
    nodes = 0
    expanded: dict[str, int] = {}  # anchor -> values under it, its aliases expanded
    open_at: list[tuple[str | None, int]] = []  # per open collection: anchor, nodes before
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor:
                expanded[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            nodes += expanded.get(event.anchor or "", 1)
        elif isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                where = f" (at line {mark.line + 1})" if mark is not None else ""
                raise RepoConfigError(
                    f"{CONFIG_FILE} nests deeper than {MAX_DEPTH} levels{where}; "
                    "no setting needs that"
                )
            open_at.append((event.anchor, nodes))
            nodes += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            anchor, before = open_at.pop()
            if anchor:
                expanded[anchor] = nodes - before
        if nodes > MAX_NODES:
            raise RepoConfigError(
                f"{CONFIG_FILE} has more than {MAX_NODES:,} values once its aliases (*name) "
                "are expanded, so it was not read; write the settings out without aliases"
            )


def parse_repo_config(text: str | None) -> RepoConfig:
    """Parse ``.agents.yml`` text (None: no file) into a validated config."""
    if text is None or not text.strip():
        return RepoConfig()
    check_entry("file", len(text.encode("utf-8", "surrogatepass")))
    try:
        check_bounds(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise RepoConfigError(f"{CONFIG_FILE} is not valid YAML{where}: {problem}") from None
    if data is None:
        return RepoConfig()
    if not isinstance(data, dict):
        raise RepoConfigError(
            f"{CONFIG_FILE} must be a mapping of settings (setup, checks, image, network, "
            f"limits, ...), not a {type(data).__name__}"
        )
    try:
        return RepoConfig.model_validate(data)
    except ValidationError as exc:
        raise RepoConfigError(_explain(exc)) from None


def _explain(exc: ValidationError) -> str:
    messages = []
    for err in exc.errors():
        where = _where(err["loc"])
        if err["type"] == "extra_forbidden":
            parent = err["loc"][:-1]
            model: type[BaseModel] = RepoConfig
            for part in parent:
                field = model.model_fields.get(str(part))
                annotation = getattr(field, "annotation", None)
                if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                    model = annotation
            allowed = ", ".join(k for k in model.model_fields if k not in _INTERNAL)
            messages.append(f"unknown key `{where}` (allowed here: {allowed})")
        else:
            value = json.dumps(err.get("input"), default=str)[:60]
            message = str(err["msg"]).removeprefix("Value error, ")
            messages.append(f"`{where}`: {message[0].lower() + message[1:]} (got {value})")
    head = f"{CONFIG_FILE}: " + messages[0]
    more = len(messages) - 1
    return head + (f"; and {more} more problem{'s' if more > 1 else ''}" if more else "")


# -- detection -------------------------------------------------------------------------


def _junit(name: str) -> str:
    return f"{JUNIT_DIR}/{name}.xml"


def detect_checks(
    exists: Callable[[str], bool], read: Callable[[str], str | None]
) -> list[CheckCommand]:
    """Guess the check commands from the files at the repository root.

    ``exists`` and ``read`` look at the workspace, so this works on any sandbox.
    """
    pyproject = read("pyproject.toml") or ""
    setup_cfg = read("setup.cfg") or ""
    if (
        exists("pytest.ini")
        or "[tool.pytest" in pyproject
        or "[tool:pytest]" in setup_cfg
        or exists("conftest.py")
        or (exists("tests") and (bool(pyproject) or exists("setup.py")))
    ):
        junit = _junit("pytest")
        return [
            CheckCommand(name="pytest", run=f"python3 -m pytest -q --junitxml={junit}", junit=junit)
        ]
    if exists("tox.ini"):
        return [CheckCommand(name="tox", run="tox")]
    package_json = read("package.json")
    if package_json:
        try:
            scripts = json.loads(package_json).get("scripts") or {}
        except (ValueError, AttributeError):
            scripts = {}
        test = scripts.get("test") if isinstance(scripts, dict) else None
        if test and "no test specified" not in test:
            return [CheckCommand(name="npm test", run="npm test")]
    if exists("go.mod"):
        return [CheckCommand(name="go test", run="go test ./...")]
    makefile = read("Makefile") or read("makefile") or ""
    if re.search(r"^test\s*:", makefile, flags=re.MULTILINE):
        return [CheckCommand(name="make test", run="make test")]
    return []


def resolve(
    text: str | None, exists: Callable[[str], bool], read: Callable[[str], str | None]
) -> RepoConfig:
    """The repository's config, with checks detected when none are configured."""
    config = parse_repo_config(text)
    if config.checks:
        return config
    detected = detect_checks(exists, read)
    return config.model_copy(update={"checks": detected, "detected": bool(detected)})
