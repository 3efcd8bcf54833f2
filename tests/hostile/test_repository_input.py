"""What a repository controls, generated: ``.agents.yml`` (any text, any YAML structure,
aliases of aliases) is a config or a :class:`RepoConfigError`, never anything else; a
patch (any paths, modes and link targets) gets a list of findings from the safety gate,
and every link out of the repository or into a protected path is among them."""

from __future__ import annotations

import posixpath

import yaml
from hypothesis import given
from hypothesis import strategies as st

from jobs.repo_config import MAX_DEPTH, RepoConfig, parse_repo_config
from jobs.safety import DEFAULT_PROTECTED, matches, scan
from process.exceptions import RepoConfigError

KEYS = ["setup", "checks", "image", "network", "limits", "fix_rounds", "escalation",
        "protected_paths", "allow_protected", "name", "run", "timeout", "memory", "x"]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
)
structures = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), inner, max_size=5),
    ),
    max_leaves=40,
)


def parsed(text: str) -> RepoConfig | RepoConfigError:
    try:
        return parse_repo_config(text)
    except RepoConfigError as err:
        refusal = err
    assert str(refusal).startswith(".agents.yml")
    assert "\n" not in str(refusal)
    return refusal


@given(st.text(max_size=2000))
def test_any_text_is_a_config_or_a_refusal(text: str) -> None:
    parsed(text)


@given(structures)
def test_any_yaml_structure_is_a_config_or_a_refusal(data: object) -> None:
    parsed(yaml.safe_dump(data, allow_unicode=True))


@given(st.integers(1, 12), st.integers(1, 12), st.sampled_from(["checks", "setup", "x"]))
def test_aliases_of_aliases_are_refused_past_the_budget(levels: int, width: int, key: str) -> None:
    lines = ["a0: &a0 [" + ", ".join(["v"] * width) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    text = "\n".join(lines) + f"\n{key}: *a{levels}\n"
    expanded = sum(width**i for i in range(1, levels + 2))
    outcome = parsed(text)
    if expanded > 20_000:
        assert isinstance(outcome, RepoConfigError)


@given(st.integers(MAX_DEPTH + 1, 5000), st.sampled_from(["[", "{a: "]))
def test_deep_nesting_is_refused(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    outcome = parsed("checks: " + opener * depth + closer * depth)
    assert isinstance(outcome, RepoConfigError)
    assert "nests deeper" in str(outcome)


segment = st.text(st.sampled_from("abc.-_/ \\\"'"), min_size=1, max_size=8)
paths = st.one_of(
    st.sampled_from([".github", ".github/workflows/ci.yml", ".agents.yml", ".devcontainer",
                     "src/app.py", "ci", "a/b"]),
    st.lists(segment, min_size=1, max_size=4).map("/".join),
)  # fmt: skip
targets = st.one_of(
    paths,
    st.sampled_from(["/etc/passwd", "..", "../..", "../x", ".", "ci/../..", ".github/workflows"]),
)


def link_section(path: str, target: str) -> str:
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 120000\nindex 0000000..1111111\n"
        f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+{target}\n\\ No newline at end of file\n"
    )


def file_section(path: str, line: str) -> str:
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\nindex 0000000..2222222\n"
        f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+{line}\n"
    )


@given(st.lists(st.tuples(st.booleans(), paths, targets), max_size=6), st.text(max_size=200))
def test_the_gate_answers_every_patch_and_sees_through_links(
    sections: list[tuple[bool, str, str]], noise: str
) -> None:
    patch = "".join(
        link_section(p, t) if is_link else file_section(p, t) for is_link, p, t in sections
    )
    findings = scan(patch + noise)
    flagged = {f.path for f in findings}
    for is_link, path, target in sections:
        if "\n" in path or "\n" in target or '"' in path or "\\" in path or " " in path:
            continue  # git would quote such a name; the header parser reads it differently
        if matches(path, DEFAULT_PROTECTED):
            assert path in flagged
        if not is_link:
            continue
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            assert path in flagged, (path, target)
        if matches(resolved, DEFAULT_PROTECTED):
            assert path in flagged, (path, target)
