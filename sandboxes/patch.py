"""The one way a sandbox's work leaves it: a binary-safe git patch against the base commit.

The script runs inside the sandbox (or the local workspace) with a throwaway index,
so the agent's own index, commits and branches neither matter nor change: the patch
is always "base commit -> files on disk now", minus what ``.gitignore`` excludes.
It covers added, deleted and renamed files, binary files, symlinks and mode changes,
and ``git apply`` on the base commit reproduces the tree.
"""

from __future__ import annotations

SCRIPT = r"""
set -eu
base=$1
index="${TMPDIR:-/tmp}/agents-export-index.$$"
trap 'rm -f "$index"' EXIT
g() {
    GIT_INDEX_FILE=$index git \
        -c safe.directory='*' -c core.fileMode=true -c core.symlinks=true \
        -c core.autocrlf=false -c core.safecrlf=false -c core.quotePath=true \
        -c core.hooksPath=/dev/null -c core.fsmonitor=false \
        -c diff.noprefix=false -c diff.mnemonicPrefix=false -c diff.relative=false "$@"
}
g read-tree "$base"
g add --all -- .
g diff --cached --binary --full-index --find-renames --no-color --no-ext-diff \
    --no-textconv --src-prefix=a/ --dst-prefix=b/ "$base" --
"""


def export_argv(base_commit: str, shell: str = "/bin/sh") -> list[str]:
    """The command that prints the patch on stdout; run it in the workspace root."""
    return [shell, "-c", SCRIPT, "agents-export", base_commit]
