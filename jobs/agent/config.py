"""Configuration of the agent loop, as plain pydantic models.

The loop never reads the environment: the worker builds an :class:`AgentConfig` from its
settings and passes it in, so tests and the blueprint choose values explicitly.
"""

from __future__ import annotations

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
from process.settings import AgentLimits, ConversationSettings, ModelRoles


class ModelRetry(BaseModel):
    """Retries of transient API failures (429, 529, 5xx, connection errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_retries: NonNegativeInt = Field(5, description="retries after the first attempt")
    initial_delay: NonNegativeFloat = Field(1.0, description="seconds before the first retry")
    max_delay: NonNegativeFloat = Field(
        60.0, description="most seconds to wait between attempts, retry-after included"
    )


class AgentConfig(ConversationSettings):
    """Everything the loop needs besides the task, the sandbox and the model: the
    settings sections it reads (limits, roles, the conversation's size) and the loop's
    own constants, which are not settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limits: AgentLimits = Field(default_factory=AgentLimits)
    roles: ModelRoles = Field(default_factory=ModelRoles)
    price_table: PriceTable = DEFAULT_PRICES
    retry: ModelRetry = Field(default_factory=ModelRetry)
    tool_output_chars: PositiveInt = Field(
        20_000, description="most characters of one tool result the model sees"
    )
    command_timeout: PositiveFloat = Field(300.0, description="default seconds for a `run` command")
    max_command_timeout: PositiveFloat = Field(
        900.0, description="most seconds the model may ask for a `run` command"
    )
    keep_turns: PositiveInt = Field(
        4, description="newest turns whose tool output is always kept whole"
    )
    conventions_chars: PositiveInt = Field(
        8000, description="most characters of AGENTS.md / CLAUDE.md / CONTRIBUTING.md shown"
    )
