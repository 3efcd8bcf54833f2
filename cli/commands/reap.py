"""`agents reap`: remove sandbox containers whose run is over or whose worker died."""

from __future__ import annotations

import argparse
import sys

import docker.errors
import redis

from jobs.environments.service import namespace
from process import settings
from runs.store import RunStore
from sandboxes import engine
from sandboxes.env_images import EnvEngine
from sandboxes.reaper import IsFinal, Reaper


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "reap",
        help="remove sandboxes whose run is final, that expired, or whose worker died",
        description="Remove sandbox containers whose run is final, whose expiry has passed "
        "or whose owner process is dead. Containers of live workers are never touched. "
        "Workers also do this when they start and periodically.",
    )
    parser.set_defaults(func=reap)


def reap(args: argparse.Namespace) -> int:
    common = settings.load(settings.CommonSettings)
    connection = redis.Redis.from_url(common.redis_url, socket_connect_timeout=2)
    try:
        connection.ping()
        store = RunStore(connection)
        is_final: IsFinal | None = store.is_final
        identity = store.identity
    except redis.RedisError as exc:
        print(
            f"agents reap: run store unreachable ({exc}); judging by expiry and owner only",
            file=sys.stderr,
        )
        is_final = None
        identity = ""
    try:
        return _reap(is_final, identity, connection if is_final is not None else None)
    finally:
        connection.close()


def _reap(is_final: IsFinal | None, store: str, connection: redis.Redis | None) -> int:
    try:
        client = engine.connect()
    except docker.errors.DockerException as exc:
        print(f"agents reap: cannot reach Docker: {exc}", file=sys.stderr)
        return 1
    try:
        pool = None
        if connection is not None:  # claimed warm-pool containers are judged by their run
            envs = EnvEngine(client)
            pool = envs.pool(connection, namespace("agents", envs))
        reaper = Reaper(client, is_final=is_final, store=store, pool=pool)
        removed = reaper.reap()
        volumes = reaper.prune_volumes()
    except docker.errors.DockerException as exc:
        print(f"agents reap: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    for removal in removed:
        print(f"removed {removal.name} (run {removal.run_id}): {removal.reason}")
    for volume in volumes:
        print(f"pruned unused workspace volume {volume}")
    print(f"{len(removed)} sandbox container(s) removed, {len(volumes)} volume(s) pruned")
    return 0
