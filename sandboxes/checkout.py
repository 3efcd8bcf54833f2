"""Moving an environment's checkout to a run's commit, inside the sandbox, with git.

An environment image holds the repository at the commit it was built from (a shallow,
one-commit repository, as :class:`~sandboxes.cache.WorkspaceArchive` makes them), plus
everything setup left in the working tree (a ``.venv``, ``node_modules``). A run's
sandbox needs another commit: the worker packs the objects of that commit's tree that
the image lacks (usually a handful; :meth:`~sandboxes.cache.RepoCache.pack_for`), the
pack goes in through the Docker API as one file, and :data:`SCRIPT` indexes it and
checks the commit out. Untracked and ignored files, which is where setup puts
dependencies, stay where they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandboxes.cache import BASE_REF

#: Where the pack is put (on the container's layer: the archive API cannot write into
#: a tmpfs mount such as /tmp).
PACK_NAME = ".git/agents-checkout.pack"

SCRIPT = rf"""
set -eu
commit=$1
pack=$2
if [ -s "$pack" ]; then
    git index-pack --stdin < "$pack" > /dev/null
fi
rm -f "$pack"
# The commit's parents are not here: it is as shallow as the one the image holds.
grep -qx "$commit" .git/shallow 2>/dev/null || echo "$commit" >> .git/shallow
git -c advice.detachedHead=false -c core.hooksPath=/dev/null checkout -q -f --detach "$commit"
git update-ref {BASE_REF} "$commit"
"""


@dataclass(frozen=True)
class Checkout:
    """The commit a sandbox started from an environment moves to, and the objects of
    its tree the environment's checkout does not have (a git pack, maybe empty)."""

    commit: str
    pack: bytes = b""
    #: The image's checkout is at ``commit`` already: nothing to move (a new container).
    already_there: bool = False


def checkout_argv(commit: str) -> list[str]:
    """The command that moves the workspace to ``commit``; run it in the workspace root."""
    return ["/bin/sh", "-c", SCRIPT, "agents-checkout", commit, PACK_NAME]
