from __future__ import annotations

import pytest
from pydantic import ValidationError

from sandboxes.config import SandboxConfig


def test_defaults_are_the_hardened_ones() -> None:
    config = SandboxConfig()
    assert config.network is False
    assert config.uid != 0
    assert config.gid != 0
    assert config.env == {}
    assert config.workspace_size_mb is not None


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        SandboxConfig.model_validate({"privileged": True})


@pytest.mark.parametrize("user", ["0:0", "0:1000", "1000:0", "root", "agent", "1000"])
def test_root_or_non_numeric_users_are_refused(user: str) -> None:
    with pytest.raises(ValidationError):
        SandboxConfig(user=user)


def test_with_changes_validates_the_result() -> None:
    config = SandboxConfig().with_changes(image="example/repo-image:1", network=True)
    assert (config.image, config.network) == ("example/repo-image:1", True)
    with pytest.raises(ValidationError):
        SandboxConfig().with_changes(memory_mb=0)
    with pytest.raises(ValidationError):
        SandboxConfig().with_changes(env={"BAD NAME": "x"})
