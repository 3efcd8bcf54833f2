"""Dollar figures come from the price table, per token kind."""

from __future__ import annotations

import pytest

from jobs.agent.pricing import DEFAULT_PRICES, ModelPrice, PriceTable, Usage, add_costs
from process.exceptions import UnknownModelPrice

USAGE = Usage(
    input_tokens=1000, output_tokens=500, cache_write_tokens=2000, cache_read_tokens=10_000
)


def test_each_kind_of_token_has_its_own_rate() -> None:
    # claude-sonnet-5-5: $2 input, $10 output, $2.50 cache write, $0.10 cache read.
    cost = DEFAULT_PRICES.cost("claude-sonnet-5-5", USAGE)
    assert cost.dollars == pytest.approx((1000 * 2 + 500 * 10 + 2000 * 2.5 + 10_000 * 0.1) / 1e6)
    assert cost.dollars == pytest.approx(0.013)
    assert (cost.input_tokens, cost.output_tokens) == (1000, 500)
    assert (cost.cache_write_tokens, cost.cache_read_tokens) == (2000, 10_000)
    assert cost.total_tokens == 13_500


@pytest.mark.parametrize(
    ("model", "dollars"),
    [
        ("claude-sonnet-5-5", 0.013),
        ("claude-haiku-4-5", (1000 * 1 + 500 * 5 + 2000 * 1.25 + 10_000 * 0.1) / 1e6),
        ("claude-opus-5", (1000 * 5 + 500 * 25 + 2000 * 6.25 + 10_000 * 0.5) / 1e6),
        ("claude-sonnet-4-6", (1000 * 3 + 500 * 15 + 2000 * 3.75 + 10_000 * 0.3) / 1e6),
    ],
)
def test_default_rows(model: str, dollars: float) -> None:
    assert DEFAULT_PRICES.cost(model, USAGE).dollars == pytest.approx(dollars)


def test_dated_ids_use_their_alias() -> None:
    table = DEFAULT_PRICES
    assert table.price_for("claude-sonnet-5-5-20260912") == table.models["claude-sonnet-5-5"]
    assert table.price_for("claude-sonnet-5-20260101") == table.models["claude-sonnet-5"]


def test_long_prompts_are_priced_at_the_higher_tier() -> None:
    short = Usage(input_tokens=50_000, cache_read_tokens=50_000, output_tokens=1000)
    long = Usage(input_tokens=50_000, cache_read_tokens=50_001, output_tokens=1000)
    assert DEFAULT_PRICES.cost("claude-haiku-5-5", short).dollars == pytest.approx(
        (50_000 * 0.1 + 50_000 * 0.01 + 1000 * 0.5) / 1e6
    )
    assert DEFAULT_PRICES.cost("claude-haiku-5-5", long).dollars == pytest.approx(
        (50_000 * 0.5 + 50_001 * 0.05 + 1000 * 2.5) / 1e6
    )


def test_an_unknown_model_has_no_price() -> None:
    with pytest.raises(UnknownModelPrice, match=r"no price for model 'gpt-9'.*AGENTS_PRICES"):
        DEFAULT_PRICES.price_for("gpt-9")
    with pytest.raises(UnknownModelPrice):
        DEFAULT_PRICES.price_for("claude-sonnet-5-9")  # a lookalike of claude-sonnet-5


def test_overrides_replace_and_add_rows() -> None:
    table = DEFAULT_PRICES.with_overrides(
        {
            "claude-sonnet-5-5": {"input": 1, "output": 1, "cache_write": 1, "cache_read": 1},
            "my-proxy-model": ModelPrice(input=0, output=0, cache_write=0, cache_read=0),
        }
    )
    assert table.cost("claude-sonnet-5-5", USAGE).dollars == pytest.approx(13_500 / 1e6)
    assert table.cost("my-proxy-model", USAGE).dollars == 0
    assert DEFAULT_PRICES.cost("claude-sonnet-5-5", USAGE).dollars == pytest.approx(0.013)
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        PriceTable(
            models={"x": {"input": 1, "output": 1, "cache_write": 1, "cache_read": 1, "n": 2}}
        )


def test_costs_add_up() -> None:
    one = DEFAULT_PRICES.cost("claude-sonnet-5-5", USAGE)
    total = add_costs([one, one, one])
    assert total.total_tokens == 3 * 13_500
    assert total.dollars == pytest.approx(0.039)
