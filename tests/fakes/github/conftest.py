"""The forge suite's fixtures (a sample repository in a bare git repository)."""

from tests.forge.conftest import (  # noqa: F401  (fixtures, registered by import)
    bare,
    base_commit,
    local_forge,
    make_patch,
    sample_source,
    template_forge,
)
