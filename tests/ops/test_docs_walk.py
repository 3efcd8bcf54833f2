"""A newcomer's walk: the commands docs/getting-started.md gives, run as written.

The "Try it" section's ``sh`` blocks are extracted and run in order, in one shell, in
a fresh copy of the repository (exactly the files a clone of this tree would hold),
with none of this machine's agents settings and no virtualenv in the environment. The
walk must end with a finished (approved) run. The docs' other links must point at files
that exist.

The walk makes its own virtualenv (``make`` creates ``.venv`` inside the copy), so the
environment running the suite is never touched; ``make pytest`` checks that.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "getting-started.md"
SECTION = "## Try it"
#: What a newcomer's shell would not have: this machine's settings and test knobs.
UNSET_PREFIXES = ("AGENTS_", "SLACK_", "ANTHROPIC_", "GITHUB_", "REDIS_URL", "VIRTUAL_ENV")


def try_it_commands(markdown: str) -> list[str]:
    """The lines of the ``sh`` blocks between "## Try it" and the next heading."""
    start = markdown.index(SECTION)
    end = markdown.find("\n## ", start + len(SECTION))
    section = markdown[start : end if end != -1 else None]
    blocks = re.findall(r"^```sh\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def fresh_copy(target: Path) -> None:
    """The files ``git clone`` would give once this tree is committed."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        source = ROOT / raw.decode()
        if not source.is_file():  # deleted in the work tree
            continue
        destination = target / raw.decode()
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination, follow_symlinks=False)


def test_the_try_it_section_is_what_the_walk_runs() -> None:
    commands = try_it_commands(GUIDE.read_text())
    assert commands == ["make demo"]


def test_every_relative_link_in_the_docs_points_at_a_file() -> None:
    for page in sorted((ROOT / "docs").glob("*.md")):
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (page.parent / target).exists(), f"{page.name}: {target}"


@pytest.mark.slow
def test_a_newcomer_following_the_guide_reaches_a_finished_run(tmp_path: Path) -> None:
    clone = tmp_path / "agents"
    fresh_copy(clone)
    script = "set -eu\n" + "\n".join(try_it_commands(GUIDE.read_text())) + "\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith(UNSET_PREFIXES)}
    env["HOME"] = str(tmp_path / "home")
    # No virtualenv on PATH, as on a fresh machine; uv's download cache is shared (it is
    # content-addressed), so the walk does not fetch every package again.
    env["PATH"] = os.pathsep.join(
        part for part in env["PATH"].split(os.pathsep) if not (Path(part) / "activate").exists()
    )
    env["UV_CACHE_DIR"] = os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv"))
    walk = subprocess.run(
        ["sh", "-c", script],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = walk.stdout + walk.stderr
    assert walk.returncode == 0, out[-4000:]
    assert re.search(r"--- #\d+ is merged after", walk.stdout), out[-4000:]
    assert "was merged into acme/retrying on the fake GitHub" in walk.stdout
