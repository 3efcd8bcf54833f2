"""``agents config``: print or write the settings reference generated from the classes."""

from __future__ import annotations

import argparse
from pathlib import Path

from process import settings

README_START = "<!-- settings-table:start -->"
README_END = "<!-- settings-table:end -->"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "config",
        help="print the settings table, or rewrite README.md and .env.example from it",
        description="The settings reference, generated from the settings classes.",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="rewrite the table in README.md and all of .env.example in the current directory",
    )
    parser.set_defaults(func=handle)


def readme_with_table(readme: str) -> str:
    start = readme.index(README_START) + len(README_START)
    end = readme.index(README_END)
    return readme[:start] + "\n" + settings.markdown_table() + readme[end:]


def handle(args: argparse.Namespace) -> int:
    if not args.write:
        print(settings.markdown_table(), end="")
        return 0
    readme = Path("README.md")
    readme.write_text(readme_with_table(readme.read_text()))
    Path(".env.example").write_text(settings.env_example())
    print("wrote README.md (settings table) and .env.example")
    return 0
