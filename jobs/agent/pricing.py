"""What a model call costs, in tokens and dollars, from a price table in configuration.

Prices are USD per million tokens, as Anthropic publishes them. Cache writes are priced
at the 5-minute TTL rate, the only TTL the loop asks for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, NonNegativeFloat, NonNegativeInt, PositiveInt

from process.exceptions import UnknownModelPrice
from runs.artifacts import Cost

PER_TOKENS = 1_000_000
#: A snapshot id: an alias plus its release date, ``claude-sonnet-4-5-20250929``.
_DATED = re.compile(r"(.+)-\d{8}")


class Usage(BaseModel):
    """Token counts of one model call, as the API's ``usage`` reports them.

    ``input_tokens`` excludes cached tokens: the prompt is the sum of all three inputs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_tokens: NonNegativeInt = 0
    output_tokens: NonNegativeInt = 0
    cache_read_tokens: NonNegativeInt = 0
    cache_write_tokens: NonNegativeInt = 0

    @property
    def prompt_tokens(self) -> int:
        """The size of the prompt the call sent, which the API reports in three parts."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens


class Rates(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: NonNegativeFloat
    output: NonNegativeFloat
    cache_write: NonNegativeFloat
    cache_read: NonNegativeFloat


class LongPromptRates(Rates):
    """Rates for a whole call whose prompt (input plus cache reads and writes) is
    longer than ``above_tokens``, for models priced by prompt length."""

    above_tokens: PositiveInt


class ModelPrice(Rates):
    """One model's rates, with an optional higher tier for long prompts."""

    long_prompt: LongPromptRates | None = None

    def rates_for(self, usage: Usage) -> Rates:
        prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        long = self.long_prompt
        return long if long is not None and prompt > long.above_tokens else self


class PriceTable(BaseModel):
    """Prices by model id. A dated id (``claude-sonnet-4-5-20250929``) uses its alias's
    row; any other id needs its own row, so no model is priced by a lookalike."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelPrice]

    def price_for(self, model: str) -> ModelPrice:
        """The row for ``model``, or for the alias of a dated snapshot id.

        Raises :class:`UnknownModelPrice` rather than guessing: a budget needs a price.
        """
        if model in self.models:
            return self.models[model]
        dated = _DATED.fullmatch(model)
        if dated is not None and dated.group(1) in self.models:
            return self.models[dated.group(1)]
        known = ", ".join(sorted(self.models))
        raise UnknownModelPrice(
            f"no price for model {model!r} (known: {known}); add it to the price table "
            "(AGENTS_PRICES) or choose a priced model (AGENTS_MODEL_*)"
        )

    def cost(self, model: str, usage: Usage) -> Cost:
        """Tokens and dollars for one call of ``model``."""
        price = self.price_for(model).rates_for(usage)
        dollars = (
            usage.input_tokens * price.input
            + usage.output_tokens * price.output
            + usage.cache_write_tokens * price.cache_write
            + usage.cache_read_tokens * price.cache_read
        ) / PER_TOKENS
        return Cost(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            dollars=dollars,
        )

    def with_overrides(self, models: Mapping[str, ModelPrice | Mapping[str, Any]]) -> PriceTable:
        """This table with rows added or replaced (for a price change, or a new model)."""
        rows = {name: ModelPrice.model_validate(row) for name, row in models.items()}
        return PriceTable(models={**self.models, **rows})


def add_costs(costs: Iterable[Cost]) -> Cost:
    """The sum of several costs."""
    total = Cost()
    for cost in costs:
        total = Cost(
            input_tokens=total.input_tokens + cost.input_tokens,
            output_tokens=total.output_tokens + cost.output_tokens,
            cache_read_tokens=total.cache_read_tokens + cost.cache_read_tokens,
            cache_write_tokens=total.cache_write_tokens + cost.cache_write_tokens,
            dollars=total.dollars + cost.dollars,
        )
    return total


#: Anthropic's public list prices (USD per million tokens), checked in November 2026, for
#: the default models and their neighbours; cache writes at the 5-minute rate. Sonnet 5.5
#: cache reads are 0.05x input since 2026-10-07; Haiku 5.5 costs more per token for
#: prompts over 100k tokens. Override or extend through configuration (AGENTS_PRICES).
DEFAULT_PRICES = PriceTable(
    models={
        "claude-sonnet-5-5": ModelPrice(input=2.0, output=10.0, cache_write=2.5, cache_read=0.1),
        "claude-haiku-5-5": ModelPrice(
            input=0.1,
            output=0.5,
            cache_write=0.125,
            cache_read=0.01,
            long_prompt=LongPromptRates(
                above_tokens=100_000, input=0.5, output=2.5, cache_write=0.625, cache_read=0.05
            ),
        ),
        "claude-opus-5-5": ModelPrice(input=4.0, output=20.0, cache_write=5.0, cache_read=0.2),
        "claude-sonnet-5": ModelPrice(input=2.0, output=10.0, cache_write=2.5, cache_read=0.2),
        "claude-opus-5": ModelPrice(input=5.0, output=25.0, cache_write=6.25, cache_read=0.5),
        "claude-sonnet-4-6": ModelPrice(input=3.0, output=15.0, cache_write=3.75, cache_read=0.3),
        "claude-haiku-4-5": ModelPrice(input=1.0, output=5.0, cache_write=1.25, cache_read=0.1),
    }
)
