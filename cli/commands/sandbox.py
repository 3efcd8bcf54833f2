"""`agents sandbox build`: make the sandbox images on this Docker engine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import docker.errors

from process.exceptions import ImageBuildFailed
from sandboxes import engine
from sandboxes.image_builder import DEFAULT_CACHE_DIR, SANDBOX_IMAGE, ImageBuilder


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("sandbox", help="manage sandbox images")
    commands = parser.add_subparsers(dest="sandbox_command", required=True)
    build = commands.add_parser(
        "build",
        help=f"build {SANDBOX_IMAGE} (skipped when it is already built from the same inputs)",
    )
    build.add_argument(
        "--offline-base",
        action="store_true",
        help="use a debootstrap base (agents-base:bookworm) instead of pulling one",
    )
    build.add_argument(
        "--ca-bundle",
        type=Path,
        metavar="PATH",
        help="PEM bundle of extra CA certificates (for a TLS-intercepting proxy)",
    )
    build.add_argument("--base", metavar="IMAGE", help="base image (default debian:bookworm-slim)")
    build.add_argument(
        "--mirror", metavar="URL", help="Debian mirror for debootstrap (default: this host's apt)"
    )
    build.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE_DIR,
        metavar="DIR",
        help=f"where the debootstrap tarball is kept (default {DEFAULT_CACHE_DIR})",
    )
    build.add_argument("--force", action="store_true", help="rebuild even if up to date")
    build.set_defaults(func=build_images)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def build_images(args: argparse.Namespace) -> int:
    if args.offline_base and args.base:
        print("agents sandbox build: --offline-base and --base exclude each other", file=sys.stderr)
        return 2
    try:
        client = engine.connect()
    except docker.errors.DockerException as exc:
        print(f"agents sandbox build: cannot reach Docker: {exc}", file=sys.stderr)
        return 1
    try:
        report = ImageBuilder(client, cache_dir=args.cache_dir, progress=_progress).build(
            offline_base=args.offline_base,
            base=args.base,
            ca_bundle=args.ca_bundle,
            force=args.force,
            mirror=args.mirror,
        )
    except ImageBuildFailed as exc:
        print(f"agents sandbox build: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    state = "built" if report.built else "up to date"
    print(f"{report.image}: {state} (base {report.base}, {report.base_source})")
    return 0
