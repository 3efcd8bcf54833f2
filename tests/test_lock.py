"""uv.lock must pin what pyproject.toml asks for: a fast check, no network, no uv.

uv records, for the project itself, the requirements it resolved from (its
``requires-dist`` and its dependency groups). When they differ from pyproject.toml's,
the lock was not refreshed after a dependency was added, removed, widened or narrowed,
and every install would take other versions than the ones CI ran with.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
FIX = "run `make lock` and commit uv.lock"

Key = tuple[str, frozenset[str], SpecifierSet, str]


def declared(text: str) -> Key:
    req = Requirement(text)
    return (
        canonicalize_name(req.name),
        frozenset(req.extras),
        req.specifier,
        str(req.marker or ""),
    )


def locked(entry: dict[str, Any]) -> Key:
    return (
        canonicalize_name(entry["name"]),
        frozenset(entry.get("extras", [])),
        SpecifierSet(entry.get("specifier", "")),
        entry.get("marker", ""),
    )


def disagreements(pyproject: dict[str, Any], lock: dict[str, Any]) -> list[str]:
    """Each requirement of pyproject.toml the lock did not resolve from, and back."""
    project = pyproject["project"]
    (own,) = [p for p in lock["package"] if p["name"] == canonicalize_name(project["name"])]
    metadata = own.get("metadata", {})
    groups = {"dependencies": project.get("dependencies", [])} | pyproject.get(
        "dependency-groups", {}
    )
    resolved = {"dependencies": metadata.get("requires-dist", [])} | metadata.get(
        "requires-dev", {}
    )
    found = []
    for group in sorted(groups.keys() | resolved.keys()):
        want = {declared(text) for text in groups.get(group, [])}
        have = {locked(entry) for entry in resolved.get(group, [])}
        found += [f"{group}: {k[0]}{k[2]} is not locked" for k in sorted(want - have, key=str)]
        found += [
            f"{group}: {k[0]}{k[2]} is locked, not declared" for k in sorted(have - want, key=str)
        ]
    if lock.get("requires-python") != project.get("requires-python"):
        found.append(f"requires-python: {project.get('requires-python')} is not locked")
    return found


def load() -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        tomllib.loads((ROOT / "pyproject.toml").read_text()),
        tomllib.loads((ROOT / "uv.lock").read_text()),
    )


def test_the_lock_pins_what_pyproject_declares() -> None:
    problems = disagreements(*load())
    assert not problems, f"pyproject.toml and uv.lock disagree ({FIX}):\n" + "\n".join(problems)


def test_a_widened_dependency_is_caught() -> None:
    pyproject, lock = load()
    deps = pyproject["project"]["dependencies"]
    index = next(i for i, d in enumerate(deps) if d.startswith("redis"))
    deps[index] = "redis>=4.0"
    assert disagreements(pyproject, lock) == [
        "dependencies: redis>=4.0 is not locked",
        "dependencies: redis>=5.0 is locked, not declared",
    ]


def test_an_added_dependency_and_group_are_caught() -> None:
    pyproject, lock = load()
    pyproject["project"]["dependencies"].append("tabulate>=0.9")
    pyproject["dependency-groups"]["docs"] = ["mkdocs"]
    assert disagreements(pyproject, lock) == [
        "dependencies: tabulate>=0.9 is not locked",
        "docs: mkdocs is not locked",
    ]


def test_extras_and_python_are_compared() -> None:
    pyproject, lock = load()
    deps = pyproject["project"]["dependencies"]
    index = next(i for i, d in enumerate(deps) if d.startswith("fakeredis"))
    deps[index] = deps[index].replace("[lua]", "")
    pyproject["project"]["requires-python"] = ">=3.10"
    problems = disagreements(pyproject, lock)
    assert len(problems) == 3, problems
    assert problems[-1] == "requires-python: >=3.10 is not locked"


def test_every_locked_file_has_a_hash() -> None:
    _, lock = load()
    for package in lock["package"]:
        if package["name"] == "agents":
            continue
        files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
        assert files, package["name"]
        assert all(f["hash"].startswith("sha256:") for f in files), package["name"]


def test_the_bootstrap_pins_uv_with_every_hash_of_the_lock() -> None:
    from scripts.lockfile import pin

    _, lock = load()
    (uv,) = [p for p in lock["package"] if p["name"] == "uv"]
    line = pin("uv", ROOT / "uv.lock")
    assert line.startswith(f"uv=={uv['version']} --hash=sha256:")
    assert line.count("--hash=") == len(uv["wheels"]) + ("sdist" in uv)


def test_a_download_list_takes_what_the_images_python_needs_with_its_hashes() -> None:
    from scripts.lockfile import for_image

    exported = (
        "async-timeout==5.0.1 ; python_full_version < '3.11.3' and sys_platform == 'linux' \\\n"
        "    --hash=sha256:aa\n"
        "numpy==2.4.6 ; python_full_version < '3.12' \\\n"
        "    --hash=sha256:n1\n"
        "    # via matplotlib\n"
        "numpy==2.5.5 ; python_full_version >= '3.12' \\\n"
        "    --hash=sha256:n2\n"
        "redis==8.2.0 \\\n"
        "    --hash=sha256:bb\n"
    )
    assert for_image(exported, python="3.11.2") == (
        "async-timeout==5.0.1 \\\n    --hash=sha256:aa\n"
        "numpy==2.4.6 \\\n    --hash=sha256:n1\n    # via matplotlib\n"
        "redis==8.2.0 \\\n    --hash=sha256:bb\n"
    )
    # A newer interpreter takes the other numpy and no async-timeout.
    newer = for_image(exported, python="3.13.1")
    assert "async-timeout" not in newer
    assert "numpy==2.5.5 \\\n" in newer
    assert "numpy==2.4.6" not in newer


def test_the_image_download_list_of_the_real_lock_names_each_package_once() -> None:
    from scripts.lockfile import for_image

    exported = subprocess.run(
        [
            sys.executable,
            "-m",
            "uv",
            "export",
            "--frozen",
            "--no-emit-project",
            "--no-header",
            "--quiet",
            "--no-dev",
            "--group",
            "dashboard",
            "--group",
            "build",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = re.findall(r"^([A-Za-z0-9_.-]+)==", for_image(exported), flags=re.MULTILINE)
    assert names
    assert len(names) == len(set(names))
    assert "async-timeout" in names
