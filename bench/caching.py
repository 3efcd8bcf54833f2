"""Prompt caching on a recorded multi-turn transcript: how much input comes from cache,
and what the calls cost with caching against the same tokens without it.

Without caching, every prompt token (fresh, cache write and cache read alike) would be
billed at the input rate; with it, at the rates :mod:`jobs.agent.pricing` holds.
The transcripts' token counts are scripted (they were recorded against the fake
Messages API), with the cache breakpoints where the agent loop puts them.
"""

from __future__ import annotations

from pathlib import Path

from bench.stats import Figure, Result
from jobs.agent.pricing import DEFAULT_PRICES, Usage
from jobs.agent.replay import Transcript

ROOT = Path(__file__).resolve().parents[1]
TRANSCRIPTS = ROOT / "examples" / "transcripts" / "blueprint"
CHOSEN = ("fix-once.jsonl", "clean.jsonl", "rework.jsonl")


def usage_of(response: dict[str, object]) -> Usage:
    raw = response.get("usage")
    assert isinstance(raw, dict)
    return Usage(
        input_tokens=int(raw.get("input_tokens") or 0),
        output_tokens=int(raw.get("output_tokens") or 0),
        cache_read_tokens=int(raw.get("cache_read_input_tokens") or 0),
        cache_write_tokens=int(raw.get("cache_creation_input_tokens") or 0),
    )


def run() -> Result:
    lines = [
        "| transcript | calls | prompt tokens | from cache | written to cache "
        "| cost with caching | without | saved |",
        "|---|---|---|---|---|---|---|---|",
    ]
    shares: list[float] = []
    ratios: list[float] = []
    for name in CHOSEN:
        transcript = Transcript.load(TRANSCRIPTS / name)
        prompt = read = written = 0
        cached = uncached = 0.0
        for exchange in transcript.exchanges:
            if exchange.response is None:  # refused as too long: nothing was charged
                continue
            model = str(exchange.request.get("model"))
            usage = usage_of(exchange.response)
            total_in = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
            plain = Usage(input_tokens=total_in, output_tokens=usage.output_tokens)
            prompt += total_in
            read += usage.cache_read_tokens
            written += usage.cache_write_tokens
            cached += DEFAULT_PRICES.cost(model, usage).dollars
            uncached += DEFAULT_PRICES.cost(model, plain).dollars
        shares.append(read / prompt)
        ratios.append(cached / uncached)
        lines.append(
            f"| `{name}` | {len(transcript.exchanges)} | {prompt:,} | {read:,} "
            f"({read / prompt:.0%}) | {written:,} | ${cached:.4f} | ${uncached:.4f} "
            f"| {1 - cached / uncached:.0%} |"
        )
    share = Figure(
        name="prompt caching: share of input tokens served from cache",
        unit="%",
        samples=[shares[0]],
        how=f"recorded transcript `{CHOSEN[0]}` (builder, one fix round, reviewer)",
        scale=100,
        decimals=0,
    )
    cost = Figure(
        name="prompt caching: cost with caching / cost without",
        unit="x",
        samples=[ratios[0]],
        how=f"`{CHOSEN[0]}` priced with `jobs/agent/pricing.py` (Sonnet 5.5 list prices)",
        decimals=2,
    )
    return Result([share, cost], details="\n".join(lines))
