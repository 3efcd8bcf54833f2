"""Configuration of the agent loop, as plain pydantic models.

The loop never reads the environment: the worker builds an :class:`AgentConfig` from its
settings and passes it in, so tests and the blueprint choose values explicitly.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)

from jobs.agent.pricing import DEFAULT_PRICES, PriceTable

Role = Literal["builder", "reviewer", "summarizer"]


class AgentLimits(BaseModel):
    """The circuit breakers. Each is checked before every model call, so none is
    overshot by more than the one call that crossed it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_turns: PositiveInt = Field(40, description="most model calls in one agent step")
    max_tokens: PositiveInt = Field(
        3_000_000,
        description="most tokens in one agent step: input, output, cache reads and writes",
    )
    max_dollars: PositiveFloat = Field(5.0, description="most USD one agent step may spend")
    wall_clock_seconds: PositiveFloat = Field(
        1800.0, description="most seconds one agent step may take, tools included"
    )
    no_progress_turns: PositiveInt = Field(
        5, description="consecutive turns that repeat earlier calls or do nothing, then stop"
    )


class ModelRoles(BaseModel):
    """Which model plays each role."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    builder: str = Field("claude-sonnet-5-5", description="model that writes the change")
    reviewer: str = Field("claude-sonnet-5-5", description="model that reviews the diff")
    summarizer: str = Field("claude-haiku-5-5", description="model that writes summaries")

    def for_role(self, role: Role) -> str:
        model: str = getattr(self, role)
        return model


class ModelRetry(BaseModel):
    """Retries of transient API failures (429, 529, 5xx, connection errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_retries: NonNegativeInt = Field(5, description="retries after the first attempt")
    initial_delay: NonNegativeFloat = Field(1.0, description="seconds before the first retry")
    max_delay: NonNegativeFloat = Field(
        60.0, description="most seconds to wait between attempts, retry-after included"
    )


class AgentConfig(BaseModel):
    """Everything the loop needs besides the task, the sandbox and the model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limits: AgentLimits = Field(default_factory=AgentLimits)
    roles: ModelRoles = Field(default_factory=ModelRoles)
    prices: PriceTable = DEFAULT_PRICES
    retry: ModelRetry = Field(default_factory=ModelRetry)
    max_output_tokens: PositiveInt = Field(8192, description="max_tokens of each model response")
    tool_output_chars: PositiveInt = Field(
        20_000, description="most characters of one tool result the model sees"
    )
    command_timeout: PositiveFloat = Field(300.0, description="default seconds for a `run` command")
    max_command_timeout: PositiveFloat = Field(
        900.0, description="most seconds the model may ask for a `run` command"
    )
    context_tokens: PositiveInt = Field(
        120_000,
        description="prompt size in tokens above which old tool output leaves the conversation",
    )
    keep_turns: PositiveInt = Field(
        4, description="newest turns whose tool output is always kept whole"
    )
    conventions_chars: PositiveInt = Field(
        8000, description="most characters of AGENTS.md / CLAUDE.md / CONTRIBUTING.md shown"
    )
