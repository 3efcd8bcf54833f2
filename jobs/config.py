"""From the worker's settings to the configuration objects the brain's parts take.

The parts (agent loop, sandbox) never read the environment themselves.
"""

from __future__ import annotations

from core.settings import WorkerSettings
from jobs.agent.config import AgentConfig, AgentLimits, ModelRoles
from jobs.agent.pricing import DEFAULT_PRICES


def agent_config(settings: WorkerSettings) -> AgentConfig:
    return AgentConfig(
        limits=AgentLimits(
            max_turns=settings.max_turns,
            max_tokens=settings.max_tokens,
            max_dollars=settings.max_dollars,
            wall_clock_seconds=settings.wall_clock_seconds,
            no_progress_turns=settings.no_progress_turns,
        ),
        roles=ModelRoles(
            builder=settings.model_builder,
            reviewer=settings.model_reviewer,
            summarizer=settings.model_summarizer,
        ),
        prices=DEFAULT_PRICES.with_overrides(settings.prices),
        max_output_tokens=settings.max_output_tokens,
    )
