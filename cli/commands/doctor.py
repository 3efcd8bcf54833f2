"""``agents doctor``: check every dependency and say how to fix what is broken."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, create_model
from pydantic_settings import BaseSettings, SettingsConfigDict

from process import settings
from process.logs import mask_url
from sandboxes import trust

if TYPE_CHECKING:
    import docker

DEFAULT_DOCKER_TIMEOUT = 5


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: skipped, with the reason in detail
    detail: str
    fix: str = ""

    def line(self) -> str:
        word = {True: "OK  ", False: "FAIL", None: "SKIP"}[self.ok]
        text = f"{word} {self.name:<18} {self.detail}"
        if self.ok is False and self.fix:
            text += f" -> fix: {self.fix}"
        return text


def raw_settings() -> dict[str, str | None]:
    """Every setting as the raw string set in the environment or ``.env`` (or None).

    Doctor reports on broken settings, so it must not fail to load them.
    """
    fields: dict[str, Any] = {
        var.lower(): (str | None, Field(None, validation_alias=var))
        for var, _field, _roles in settings.all_fields()
    }
    model = create_model(
        "RawSettings",
        __base__=BaseSettings,
        __config__=None,
        **fields,
    )
    model.model_config = SettingsConfigDict(env_file=".env", extra="ignore")
    values = model().model_dump()
    return {var: values[var.lower()] for var, _f, _r in settings.all_fields()}


def _default(var: str) -> Any:
    for name, field, _roles in settings.all_fields():
        if name == var:
            return field.get_default(call_default_factory=True)
    raise KeyError(var)


def check_redis(raw: dict[str, str | None]) -> Check:
    import redis

    url = raw["REDIS_URL"] or str(_default("REDIS_URL"))
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, ValueError) as exc:
        return Check(
            "redis",
            False,
            f"cannot reach {mask_url(url)}: {str(exc).replace(url, mask_url(url))}",
            "start Redis (e.g. `redis-server --daemonize yes`) or set REDIS_URL",
        )
    return Check("redis", True, f"reachable at {mask_url(url)}")


def check_docker(raw: dict[str, str | None]) -> list[Check]:
    import docker
    from docker.errors import DockerException, ImageNotFound

    image = raw["AGENTS_SANDBOX_IMAGE"] or str(_default("AGENTS_SANDBOX_IMAGE"))
    try:
        client = docker.from_env(timeout=DEFAULT_DOCKER_TIMEOUT)
    except DockerException as exc:
        return [
            Check(
                "docker",
                False,
                f"cannot reach the Docker daemon: {exc}",
                "start dockerd, or set DOCKER_HOST to a reachable engine",
            ),
            Check("sandbox image", None, f"{image}: not checked, Docker is unreachable"),
        ]
    try:
        client.ping()
        version = client.version().get("Version", "?")
        checks = [Check("docker", True, f"engine {version} reachable")]
        try:
            client.images.get(image)
            checks.append(Check("sandbox image", True, f"{image} present"))
            checks.append(check_ca(client, image))
        except ImageNotFound:
            checks.append(
                Check(
                    "sandbox image",
                    False,
                    f"{image} is not on the engine",
                    "run `agents sandbox build` (add --offline-base when no registry "
                    "is reachable), or set AGENTS_SANDBOX_IMAGE",
                )
            )
        checks.append(check_environments(client, raw))
        return checks
    except DockerException as exc:
        return [
            Check("docker", False, f"daemon error: {exc}", "check dockerd's log and DOCKER_HOST"),
            Check("sandbox image", None, f"{image}: not checked, Docker is unreachable"),
        ]
    finally:
        client.close()


def check_ca(
    client: docker.DockerClient, image: str, dirs: tuple[Path, ...] = trust.LOCAL_CA_DIRS
) -> Check:
    """The host's locally added CAs (a TLS-intercepting proxy's) are in the image too."""
    missing = trust.missing_cas(client, image, dirs)
    if not missing.files:
        return Check("sandbox CAs", True, f"{image} trusts every CA this host added")
    names = ", ".join(path.name for path in missing.files[:3])
    more = len(missing.files) - 3
    return Check(
        "sandbox CAs",
        False,
        f"this host trusts {names}{f' and {more} more' if more > 0 else ''}, which {image} "
        "lacks: HTTPS from its setup fails behind a TLS-intercepting proxy",
        f"`{missing.command}`",
    )


def check_environments(client: Any, raw: dict[str, str | None]) -> Check:
    """How much disk the environment images take, against AGENTS_ENV_DISK_BUDGET."""
    from sandboxes.env_images import EnvEngine

    value = raw["AGENTS_ENV_DISK_BUDGET"] or str(_default("AGENTS_ENV_DISK_BUDGET"))
    try:
        budget = settings.bytes_of(value)
    except ValueError:
        return Check("environments", None, "not measured: AGENTS_ENV_DISK_BUDGET is malformed")
    engine = EnvEngine(client)
    images = engine.images()
    sizes = engine.unique_sizes()
    used = sum(sizes.get(image.id, 0) for image in images)
    repos = len({image.repo for image in images})
    gib = 1024**3
    detail = (
        f"{len(images)} image(s) of {repos} repositories use {used / gib:.2f} GiB of disk "
        f"(their own layers), budget {budget / gib:.2f} GiB (AGENTS_ENV_DISK_BUDGET)"
    )
    if used > budget:
        detail += "; over it: workers remove the least recently used on their next pass"
    return Check("environments", True, detail)


def check_slack(raw: dict[str, str | None]) -> list[Check]:
    checks: list[Check] = []
    bot_token = raw["SLACK_BOT_TOKEN"]
    app_token = raw["SLACK_APP_TOKEN"]
    if not bot_token:
        checks.append(
            Check(
                "slack bot token",
                False,
                "SLACK_BOT_TOKEN is not set",
                "set SLACK_BOT_TOKEN to the Bot User OAuth Token (xoxb-...) from your app's "
                "OAuth & Permissions page",
            )
        )
    elif not bot_token.startswith("xoxb-"):
        checks.append(
            Check(
                "slack bot token",
                False,
                "SLACK_BOT_TOKEN does not start with xoxb-",
                "use the Bot User OAuth Token, not a user (xoxp-) or app (xapp-) token",
            )
        )
    else:
        checks.append(Check("slack bot token", True, "has the xoxb- form"))

    if app_token:
        if app_token.startswith("xapp-"):
            checks.append(Check("slack mode", True, "Socket Mode (SLACK_APP_TOKEN has xapp- form)"))
        else:
            checks.append(
                Check(
                    "slack mode",
                    False,
                    "SLACK_APP_TOKEN does not start with xapp-",
                    "create an app-level token with connections:write (Basic Information "
                    "page) and set SLACK_APP_TOKEN to it",
                )
            )
    elif raw["SLACK_SIGNING_SECRET"]:
        checks.append(Check("slack mode", True, "HTTP mode (SLACK_SIGNING_SECRET set)"))
    else:
        checks.append(
            Check(
                "slack mode",
                False,
                "neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET is set",
                "set SLACK_APP_TOKEN (xapp-...) for Socket Mode, or SLACK_SIGNING_SECRET "
                "for HTTP mode",
            )
        )

    if not bot_token or not bot_token.startswith("xoxb-"):
        checks.append(Check("slack auth.test", None, "not tried without a well-formed token"))
        return checks
    checks.append(check_slack_auth(bot_token, raw["SLACK_API_URL"] or "https://slack.com/api/"))
    return checks


def check_slack_auth(token: str, base_url: str) -> Check:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token=token, base_url=base_url, timeout=5)
    try:
        response = client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown error")
        return Check(
            "slack auth.test",
            False,
            f"Slack rejected the bot token: {error}",
            "reinstall the app to the workspace and copy the new Bot User OAuth Token "
            "into SLACK_BOT_TOKEN",
        )
    except OSError as exc:
        return Check("slack auth.test", None, f"Slack not reachable at {base_url} ({exc})")
    return Check(
        "slack auth.test",
        True,
        f"token valid for team {response.get('team')!s} as {response.get('user')!s}",
    )


def check_model_and_forge(raw: dict[str, str | None]) -> list[Check]:
    checks: list[Check] = []
    backend = raw["AGENTS_MODEL_BACKEND"] or str(_default("AGENTS_MODEL_BACKEND"))
    if backend == "replay":
        checks.append(Check("model key", True, "replay backend: no key needed"))
    elif raw["ANTHROPIC_API_KEY"]:
        checks.append(Check("model key", True, "ANTHROPIC_API_KEY is set"))
    else:
        checks.append(
            Check(
                "model key",
                False,
                "ANTHROPIC_API_KEY is not set",
                "create a key in the Anthropic console and set ANTHROPIC_API_KEY "
                "(or AGENTS_MODEL_BACKEND=replay for a recorded transcript)",
            )
        )
    forge = raw["AGENTS_FORGE"] or str(_default("AGENTS_FORGE"))
    if forge == "local":
        checks.append(Check("forge token", True, "local forge: no token needed"))
    elif raw["GITHUB_TOKEN"]:
        checks.append(Check("forge token", True, "GITHUB_TOKEN is set"))
    elif raw.get("AGENTS_GITHUB_APP_ID") and (
        raw.get("AGENTS_GITHUB_APP_PRIVATE_KEY") or raw.get("AGENTS_GITHUB_APP_PRIVATE_KEY_FILE")
    ):
        checks.append(
            Check("forge token", True, "a GitHub App: installation tokens are minted per job")
        )
    else:
        checks.append(
            Check(
                "forge token",
                False,
                "GITHUB_TOKEN is not set",
                "create a fine-grained token with contents and pull-requests write on the "
                "target repositories and set GITHUB_TOKEN (or AGENTS_FORGE=local)",
            )
        )
    return checks


def check_settings(already_reported: set[str]) -> list[Check]:
    """Malformed values the other checks do not already cover, one line per role."""
    checks: list[Check] = []
    for role, cls in settings.ROLES.items():
        found = [p for p in settings.problems(cls) if p.variable not in already_reported]
        if found:
            checks.extend(
                Check(f"settings ({role})", False, str(p), f"correct {p.variable}") for p in found
            )
        else:
            checks.append(Check(f"settings ({role})", True, "all other values well-formed"))
    return checks


ALWAYS_REPORTED = {
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "ANTHROPIC_API_KEY",
    "GITHUB_TOKEN",
}


def diagnose(raw: dict[str, str | None]) -> list[Check]:
    steps: list[Callable[[], Check | list[Check]]] = [
        lambda: check_settings(ALWAYS_REPORTED),
        lambda: check_redis(raw),
        lambda: check_docker(raw),
        lambda: check_slack(raw),
        lambda: check_model_and_forge(raw),
    ]
    checks: list[Check] = []
    for step in steps:
        result = step()
        checks.extend(result if isinstance(result, list) else [result])
    return checks


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check Redis, Docker, the sandbox image, Slack tokens, model key and forge token",
        description="Check every dependency; print one OK/FAIL line each with the fix. "
        "Exits 1 if any check fails.",
    )
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    checks = diagnose(raw_settings())
    for check in checks:
        print(check.line())
    failed = sum(1 for check in checks if check.ok is False)
    print(f"{failed} check(s) failed" if failed else "all checks passed")
    return 1 if failed else 0
