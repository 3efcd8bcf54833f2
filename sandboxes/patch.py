"""The one way a sandbox's work leaves it: a binary-safe git patch against the base commit.

The script runs inside the sandbox (or the local workspace) with a throwaway index,
so the agent's own index, commits and branches neither matter nor change: the patch
is always "base commit -> files on disk now", minus what ``.gitignore`` excludes.
It covers added, deleted and renamed files, binary files, symlinks and mode changes,
and ``git apply`` on the base commit reproduces the tree.

Build output never enters it, even in a repository without a ``.gitignore``: new files
matching :data:`BUILD_OUTPUT` anywhere are left out, and so are new files under a
directory named in :data:`BUILD_DIRS` where the base commit has no directory of that
name (a repository whose ``build/`` holds sources keeps it). A file the base commit
tracks is always exported as it is now, whatever its name.
"""

from __future__ import annotations

#: Build output and caches, by glob (git's wildmatch), wherever they are.
BUILD_OUTPUT = (
    "**/__pycache__/**",
    "**/*.pyc",
    "**/*.pyo",
    "**/.pytest_cache/**",
    "**/.mypy_cache/**",
    "**/.ruff_cache/**",
    "**/.hypothesis/**",
    "**/.tox/**",
    "**/.nox/**",
    "**/.venv/**",
    "**/*.egg-info/**",
    "**/.coverage",
    "**/.coverage.*",
    "**/htmlcov/**",
    "**/node_modules/**",
    "**/.DS_Store",
)
#: Directory names that are build output unless the repository tracks one of that name.
BUILD_DIRS = ("build", "dist", "target")

SCRIPT = r"""
set -eu
base=$1
shift
index="${TMPDIR:-/tmp}/agents-export-index.$$"
specs="${TMPDIR:-/tmp}/agents-export-specs.$$"
trap 'rm -f "$index" "$specs"' EXIT
g() {
    GIT_INDEX_FILE=$index git \
        -c safe.directory='*' -c core.fileMode=true -c core.symlinks=true \
        -c core.autocrlf=false -c core.safecrlf=false -c core.quotePath=true \
        -c core.hooksPath=/dev/null -c core.fsmonitor=false \
        -c diff.noprefix=false -c diff.mnemonicPrefix=false -c diff.relative=false "$@"
}
g read-tree "$base"
tracked_dirs=$(g ls-tree -r -d --name-only "$base" | sed 's|.*/||' | sort -u)
printf '%s\n' . > "$specs"
for arg in "$@"; do
    case $arg in
    dir:*)
        name=${arg#dir:}
        if ! printf '%s\n' "$tracked_dirs" | grep -qxF "$name"; then
            printf ':(exclude,glob)**/%s/**\n' "$name" >> "$specs"
        fi ;;
    *) printf ':(exclude,glob)%s\n' "$arg" >> "$specs" ;;
    esac
done
g add --all --pathspec-from-file="$specs"
g add --update -- .
g diff --cached --binary --full-index --find-renames --no-color --no-ext-diff \
    --no-textconv --src-prefix=a/ --dst-prefix=b/ "$base" --
"""


def export_argv(base_commit: str, shell: str = "/bin/sh") -> list[str]:
    """The command that prints the patch on stdout; run it in the workspace root."""
    dirs = [f"dir:{name}" for name in BUILD_DIRS]
    return [shell, "-c", SCRIPT, "agents-export", base_commit, *BUILD_OUTPUT, *dirs]
