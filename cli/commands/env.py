"""``agents env``: build, list and remove repository environments (docs/environments.md).

``agents env build owner/name|PATH`` builds the environment of the default branch's
head now (a local directory is published to the local forge first, as ``agents run``
does); it is what a worker would build on a repository's first run. ``agents env ls``
lists the environment images on the engine, ``agents env rm`` removes some: the
engine refuses to remove one a sandbox still uses.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from cli.local_redis import open_redis
from process import settings
from process.exceptions import EnvironmentBuildFailed, ForgeError, RepoCacheError, StepFailed
from runs.store import RunStore
from sandboxes.env_images import EnvEngine, EnvImage
from sandboxes.pool import WarmPool

EXIT_FAILED = 1
EXIT_USAGE = 2
PREFIX = "agents"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "env",
        help="build, list and remove repository environments",
        description="Repository environments: a checkout plus what its setup installed, "
        "kept as an image on the Docker engine and reused by every sandbox.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    build = verbs.add_parser(
        "build",
        help="build the environment of a repository's default branch now",
        description="Build the environment of the default branch's head, unless one with "
        "its key exists. Exits 1 when setup fails, naming the command.",
    )
    build.add_argument("repo", help="owner/name on the forge, or a local directory")
    build.add_argument(
        "--name", metavar="OWNER/NAME", help="with a directory: the name to publish it as"
    )
    build.add_argument(
        "--force", action="store_true", help="build again even if the key has an image"
    )
    build.set_defaults(func=handle_build)
    ls = verbs.add_parser("ls", help="list the environments on the Docker engine")
    ls.set_defaults(func=handle_ls)
    rm = verbs.add_parser(
        "rm",
        help="remove environments (by key prefix, repository, or all)",
        description="Remove environment images. The engine refuses one a sandbox uses.",
    )
    rm.add_argument("keys", nargs="*", metavar="KEY", help="key prefixes, as `env ls` shows")
    rm.add_argument("--repo", help="every environment of this repository")
    rm.add_argument("--all", action="store_true", help="every environment on the engine")
    rm.set_defaults(func=handle_rm)


def _engine(command: str) -> EnvEngine | None:
    engine = EnvEngine.try_connect()
    if engine is None:
        print(
            f"agents env {command}: cannot reach Docker (DOCKER_HOST or the socket)",
            file=sys.stderr,
        )
    return engine


def _pool(engine: EnvEngine) -> WarmPool | None:
    """The engine's warm pools, if the run store's Redis answers (for their claims)."""
    import redis

    from jobs.environments.service import namespace

    common = settings.load(settings.CommonSettings)
    connection = redis.Redis.from_url(common.redis_url, socket_connect_timeout=2)
    try:
        connection.ping()
    except redis.RedisError:
        connection.close()
        return None
    return engine.pool(connection, namespace(PREFIX, engine))


def _ago(when: datetime) -> str:
    seconds = (datetime.now(UTC) - when).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MiB"


def handle_build(args: argparse.Namespace) -> int:
    # The model is not needed to build an environment: its key is not asked for.
    worker = settings.load(
        settings.WorkerSettings, sandbox_backend="docker", model_backend="replay"
    )
    from jobs.blueprint.wiring import open_deps
    from jobs.environments.upkeep import default_branch_recipe

    repo = args.repo
    if Path(repo).is_dir():
        from cli.commands.run import publish_directory

        if worker.forge != "local":
            print("agents env build: a local directory needs AGENTS_FORGE=local", file=sys.stderr)
            return EXIT_USAGE
        repo = publish_directory(Path(repo), worker.local_forge_dir, args.name)
        print(f"published {args.repo} to the local forge as {repo}")
    elif not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
        print(f"agents env build: {repo!r} is neither a directory nor owner/name", file=sys.stderr)
        return EXIT_USAGE
    conn, _ = open_redis()
    store = RunStore(conn, retention_seconds=worker.run_retention_seconds, prefix=PREFIX)
    try:
        with open_deps(worker, store) as deps:
            envs = deps.environments
            if envs is None:
                print("agents env build: cannot reach Docker", file=sys.stderr)
                return EXIT_FAILED
            found = default_branch_recipe(deps, envs, repo)
            if found is None:
                print(
                    f"{repo} has no setup (.agents.yml, devcontainer, Dockerfile): nothing to build"
                )
                return 0
            recipe, head = found
            current = envs.engine.find(recipe.key)
            after = current.created_at if (current and args.force) else None
            print(
                f"environment {recipe.short_key} of {repo} at {head[:12]}: inputs "
                f"{', '.join(recipe.inputs) or 'none found'}"
            )
            ready = envs.ensure(
                recipe, head, built_after=after, on_egress=lambda report: print(report.summary())
            )
    except EnvironmentBuildFailed as err:
        print(f"agents env build: {err}", file=sys.stderr)
        return EXIT_FAILED
    except (StepFailed, ForgeError, RepoCacheError) as err:
        print(f"agents env build: {err}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        conn.close()
    image = ready.image
    if ready.built:
        print(f"built {image.name} in {image.build_seconds:.0f} s")
    else:
        print(f"already built {_ago(image.created_at)}: {image.name} (reused)")
    return 0


def handle_ls(args: argparse.Namespace) -> int:
    engine = _engine("ls")
    if engine is None:
        return EXIT_FAILED
    try:
        images = engine.images()
        sizes = engine.unique_sizes()
    finally:
        engine.close()
    if not images:
        print("no environments on this engine")
        return 0
    rows = [("KEY", "REPOSITORY", "COMMIT", "BUILT", "BUILD", "SIZE", "INPUTS")]
    for image in images:
        rows.append(
            (
                image.short_key + ("" if image.tags else " (old)"),
                image.repo,
                image.commit[:12],
                _ago(image.created_at),
                f"{image.build_seconds:.0f}s",
                _mib(sizes.get(image.id, 0)),
                image.inputs[:60] or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    total = sum(sizes.get(image.id, 0) for image in images)
    print(f"{len(images)} environment image(s), {_mib(total)} of their own")
    return 0


def handle_rm(args: argparse.Namespace) -> int:
    if not (args.keys or args.repo or args.all):
        print("agents env rm: name KEY prefixes, --repo OWNER/NAME or --all", file=sys.stderr)
        return EXIT_USAGE
    engine = _engine("rm")
    if engine is None:
        return EXIT_FAILED

    def chosen(image: EnvImage) -> bool:
        return (
            args.all
            or (args.repo is not None and image.repo == args.repo)
            or any(image.key.startswith(k) for k in args.keys)
        )

    kept = 0
    pool = _pool(engine)
    try:
        wanted = [image for image in engine.images() if chosen(image)]
        for image in wanted:
            if pool is not None:
                pool.drain(image.id)  # idle pool containers go with their image
            if engine.remove(image):
                print(f"removed {image.short_key} ({image.repo})")
            else:
                kept += 1
                print(f"kept {image.short_key} ({image.repo}): a sandbox still uses it")
    finally:
        engine.close()
    if not wanted:
        print("no environment matched")
        return EXIT_FAILED
    return EXIT_FAILED if kept else 0
