"""What the blueprint takes from the worker's settings, as one frozen model.

It is made of the settings sections the steps read (declared once, in
:mod:`process.settings`, with the same names) plus the blueprint's own constants,
which are not settings. The steps never read the environment: :func:`jobs.config.blueprint_config`
fills this in from :class:`~process.settings.WorkerSettings`, and tests build it directly.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, model_validator

from process import allowlist
from process.settings import (
    BlueprintSettings,
    FactorySettings,
    PeopleSettings,
    PullRequestSettings,
    SandboxSettings,
)
from sandboxes.config import DEFAULT_IMAGE, SandboxConfig


class BlueprintConfig(
    BlueprintSettings, FactorySettings, PullRequestSettings, PeopleSettings, SandboxSettings
):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The sandbox every run starts from (the image is ``sandbox_image`` unless given,
    #: and the hardened limits); the repository's config changes image, network and
    #: limits on top of it.
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    #: Sizes of what the agent and the reviewer are shown.
    failure_slice_chars: int = 8000
    review_diff_chars: int = 60_000
    #: How long check results on a base commit are kept (they never change).
    base_checks_ttl: int = 7 * 86400

    @model_validator(mode="before")
    @classmethod
    def _sandbox_image(cls, data: Any) -> Any:
        """The sandbox runs ``sandbox_image`` unless a whole sandbox config is given."""
        if isinstance(data, dict) and "sandbox" not in data:
            sandbox = SandboxConfig(
                image=data.get("sandbox_image", DEFAULT_IMAGE),
                allow=tuple(data.get("egress_allow", allowlist.DEFAULT_ALLOW)),
            )
            data = {**data, "sandbox": sandbox}
        return data
