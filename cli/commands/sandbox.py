"""`agents sandbox build`: make the sandbox images (and the egress proxy's) on this engine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import docker.errors

from process.exceptions import ImageBuildFailed
from sandboxes import engine
from sandboxes.image_builder import DEFAULT_CACHE_DIR, KINDS, ImageBuilder


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("sandbox", help="manage sandbox images")
    commands = parser.add_subparsers(dest="sandbox_command", required=True)
    kinds = ", ".join(f"{k.name} ({k.tag}: {k.help})" for k in KINDS.values())
    build = commands.add_parser(
        "build",
        help="build sandbox images (each skipped when already built from the same inputs)",
        description=f"Build images on this Docker engine: {kinds}.",
    )
    build.add_argument(
        "kinds",
        nargs="*",
        metavar="IMAGE",
        help=f"which images: {', '.join(KINDS)} (default: sandbox)",
    )
    build.add_argument(
        "--tag",
        metavar="NAME",
        help="tag the image NAME instead of its default (one IMAGE only); other images "
        "are left alone, e.g. `--ca-bundle corp.pem --tag agents-sandbox:corp`",
    )
    build.add_argument(
        "--offline-base",
        action="store_true",
        help="use a debootstrap base (agents-base:bookworm) instead of pulling one",
    )
    build.add_argument(
        "--ca-bundle",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="PEM file of extra CA certificates the sandbox trusts (a TLS-intercepting "
        "proxy's); repeat it for several",
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
    problem = _usage_problem(args)
    if problem:
        print(f"agents sandbox build: {problem}", file=sys.stderr)
        return 2
    try:
        client = engine.connect()
    except docker.errors.DockerException as exc:
        print(f"agents sandbox build: cannot reach Docker: {exc}", file=sys.stderr)
        return 1
    try:
        builder = ImageBuilder(client, cache_dir=args.cache_dir, progress=_progress)
        for kind in dict.fromkeys(args.kinds):
            report = builder.build(
                kind=kind,
                offline_base=args.offline_base,
                base=args.base,
                ca_bundles=args.ca_bundle if kind != "egress" else (),
                force=args.force,
                mirror=args.mirror,
                image=args.tag,
            )
            state = "built" if report.built else "up to date"
            print(f"{report.image}: {state} (base {report.base}, {report.base_source})")
    except ImageBuildFailed as exc:
        print(f"agents sandbox build: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


def _usage_problem(args: argparse.Namespace) -> str | None:
    args.kinds = args.kinds or ["sandbox"]
    unknown = [k for k in args.kinds if k not in KINDS]
    if unknown:
        return f"unknown image {unknown[0]!r}; choose from {', '.join(KINDS)}"
    if args.offline_base and args.base:
        return "--offline-base and --base exclude each other"
    if args.tag and len(set(args.kinds)) != 1:
        return "--tag names one image; give exactly one IMAGE with it"
    if args.ca_bundle and set(args.kinds) == {"egress"}:
        return "--ca-bundle is for the sandbox images; the egress proxy only tunnels TLS"
    return None
