"""A fixture repository with history, built at test time from a real package.

The root commit is inflection 0.5.1 as its sdist ships it (``pip download --no-binary
:all:``, cached between runs). On top come commits written here: six that change the
package and add tests for the change (qualifying tasks whose new tests fail before),
one that changes the package and adds tests that already pass (dropped: its tests
cannot tell a fix apart), and two that do not qualify (tests only; docs only).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "inflection"
VERSION = "0.5.1"
SDIST_CACHE = Path(tempfile.gettempdir()) / "agents-test-sdists"
MODULE = "inflection/__init__.py"


@dataclass(frozen=True)
class Change:
    subject: str
    body: str
    source: str  # appended to inflection/__init__.py ("" for none)
    tests: dict[str, str]  # path -> content
    other: dict[str, str] | None = None


def _feature(name: str, code: str, test: str, subject: str, body: str) -> Change:
    return Change(subject, body, code, {f"tests/test_{name}.py": test})


CHANGES = [
    _feature(
        "kebabize",
        '\n\ndef kebabize(word: str) -> str:\n    """``DeviceType`` -> ``device-type``."""\n'
        "    return dasherize(underscore(word))\n",
        "from inflection import kebabize\n\n\ndef test_camel_case() -> None:\n"
        '    assert kebabize("DeviceType") == "device-type"\n\n\n'
        "def test_two_words() -> None:\n"
        '    assert kebabize("ActiveRecord") == "active-record"\n',
        "Add kebabize",
        "Turn CamelCase words into kebab-case, the way URL slugs want them.",
    ),
    _feature(
        "constant",
        "\n\ndef constantize_name(word: str) -> str:\n"
        '    """``DeviceType`` -> ``DEVICE_TYPE``."""\n'
        "    return underscore(word).upper()\n",
        "from inflection import constantize_name\n\n\ndef test_constant() -> None:\n"
        '    assert constantize_name("DeviceType") == "DEVICE_TYPE"\n',
        "Add constantize_name",
        "Name constants after classes: DeviceType becomes DEVICE_TYPE.",
    ),
    _feature(
        "initials",
        '\n\ndef initials(text: str) -> str:\n    """``active record`` -> ``AR``."""\n'
        '    return "".join(part[0].upper() for part in titleize(text).split())\n',
        "from inflection import initials\n\n\ndef test_words() -> None:\n"
        '    assert initials("active record") == "AR"\n\n\n'
        "def test_camel() -> None:\n"
        '    assert initials("ActiveRecord") == "AR"\n',
        "Add initials",
        "Abbreviate a phrase to its initials, for short labels.",
    ),
    _feature(
        "count",
        "\n\ndef pluralize_count(count: int, word: str) -> str:\n"
        '    """``2, "person"`` -> ``2 people``."""\n'
        '    return f"{count} {word if count == 1 else pluralize(word)}"\n',
        "from inflection import pluralize_count\n\n\ndef test_one() -> None:\n"
        '    assert pluralize_count(1, "person") == "1 person"\n\n\n'
        "def test_many() -> None:\n"
        '    assert pluralize_count(3, "person") == "3 people"\n',
        "Add pluralize_count",
        "Say how many of something there are, with the right noun form.",
    ),
    _feature(
        "undasherize",
        '\n\ndef undasherize(word: str) -> str:\n    """``puni-puni`` -> ``puni_puni``."""\n'
        '    return word.replace("-", "_")\n',
        "from inflection import undasherize\n\n\ndef test_dashes() -> None:\n"
        '    assert undasherize("puni-puni") == "puni_puni"\n',
        "Add undasherize",
        "The inverse of dasherize.",
    ),
    _feature(
        "sentence",
        "\n\ndef to_sentence(words: list[str]) -> str:\n"
        '    """``[a, b, c]`` -> ``a, b and c``."""\n'
        "    if len(words) < 2:\n"
        '        return "".join(words)\n'
        '    return ", ".join(words[:-1]) + " and " + words[-1]\n',
        "from inflection import to_sentence\n\n\ndef test_three() -> None:\n"
        '    assert to_sentence(["a", "b", "c"]) == "a, b and c"\n\n\n'
        "def test_one() -> None:\n"
        '    assert to_sentence(["a"]) == "a"\n',
        "Add to_sentence",
        "Join words the way a sentence lists them.",
    ),
]
#: Changes source and tests, but its tests pass before the change too: dropped.
ALREADY_PASSING = Change(
    "Document ordinal's suffixes",
    "A comment, and tests pinning the existing behaviour.",
    "\n\n# ordinal() returns only the suffix: 'st', 'nd', 'rd' or 'th'.\n",
    {
        "tests/test_ordinal_suffix.py": "from inflection import ordinal\n\n\n"
        "def test_first() -> None:\n"
        '    assert ordinal(1) == "st"\n'
    },
)
TESTS_ONLY = Change(
    "More tests for dasherize",
    "",
    "",
    {
        "tests/test_dasherize.py": "from inflection import dasherize\n\n\n"
        "def test_dasherize() -> None:\n"
        '    assert dasherize("a_b") == "a-b"\n'
    },
)
DOCS_ONLY = Change("Mention the fork", "", "", {}, {"NOTES.md": "A fork, for tests.\n"})

#: Newest first, as history mode picks them: the qualifying commits' subjects.
QUALIFYING = [c.subject for c in reversed([*CHANGES[:3], ALREADY_PASSING, *CHANGES[3:]])]


def sdist_tree(destination: Path) -> Path:
    """The package's sdist unpacked into ``destination`` (downloaded once per machine)."""
    SDIST_CACHE.mkdir(parents=True, exist_ok=True)
    archive = SDIST_CACHE / f"{PACKAGE}-{VERSION}.tar.gz"
    if not archive.is_file():
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
                *("--no-binary", ":all:", f"{PACKAGE}=={VERSION}", "-d", str(SDIST_CACHE)),
            ],
            check=True,
            timeout=300,
        )
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")
    return destination / f"{PACKAGE}-{VERSION}"


def _git(repo: Path, *args: str, when: int = 0) -> str:
    stamp = f"{1_700_000_000 + when * 3600} +0000"
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Fixture",
        "GIT_AUTHOR_EMAIL": "fixture@example.com",
        "GIT_COMMITTER_NAME": "Fixture",
        "GIT_COMMITTER_EMAIL": "fixture@example.com",
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_DATE": stamp,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def _commit(repo: Path, change: Change, when: int) -> str:
    if change.source:
        with (repo / MODULE).open("a") as handle:
            handle.write(change.source)
    for path, content in {**change.tests, **(change.other or {})}.items():
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    _git(repo, "add", "--all")
    message = f"{change.subject}\n\n{change.body}" if change.body else change.subject
    _git(repo, "commit", "--quiet", "-m", message, when=when)
    return _git(repo, "rev-parse", "HEAD")


def build(root: Path) -> tuple[Path, dict[str, str]]:
    """The repository at ``root/inflection``, and each change's commit by subject."""
    tree = sdist_tree(root / "sdist")
    repo = root / PACKAGE
    shutil.copytree(
        tree, repo, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "PKG-INFO")
    )
    # The checks run the tests under tests/ (the sdist's own test module has a failure
    # on current Pythons, which would only make every run check the base commit too).
    (repo / ".agents.yml").write_text(
        "checks:\n  - python3 -m pytest -q -p no:cacheprovider tests\n"
    )
    (repo / "tests").mkdir()
    (repo / "tests" / "test_version.py").write_text(
        f"import inflection\n\n\ndef test_version() -> None:\n"
        f'    assert inflection.__version__ == "{VERSION}"\n'
    )
    (repo / ".gitignore").write_text("__pycache__/\n")
    _git(repo, "init", "--quiet", "--initial-branch=main")
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "-m", f"Import {PACKAGE} {VERSION} from its sdist")
    commits: dict[str, str] = {}
    order = [*CHANGES[:3], ALREADY_PASSING, TESTS_ONLY, *CHANGES[3:], DOCS_ONLY]
    for when, change in enumerate(order, start=1):
        commits[change.subject] = _commit(repo, change, when)
    return repo, commits


def swe_task(repo: Path, name: str, commit: str, **extra: object) -> dict[str, object]:
    """A SWE-bench-format record for ``commit`` of the fixture (what a dataset holds)."""
    parent = _git(repo, "rev-parse", f"{commit}^")
    tests = [p for p in _git(repo, "diff", "--name-only", parent, commit).split() if "test" in p]
    others = [
        p for p in _git(repo, "diff", "--name-only", parent, commit).split() if p not in tests
    ]
    test_patch = _git(repo, "diff", parent, commit, "--", *tests) + "\n"
    patch = _git(repo, "diff", parent, commit, "--", *others) + "\n"
    record: dict[str, object] = {
        "instance_id": f"fixture__{commit[:10]}",
        "repo": name,
        "base_commit": parent,
        "problem_statement": _git(repo, "show", "-s", "--format=%B", commit),
        "test_patch": test_patch,
        "patch": patch,
        "version": "0.5",
        "hints_text": "",
    }
    record.update(extra)
    return record


def as_jsonl(records: list[dict[str, object] | str]) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
