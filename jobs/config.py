"""From the worker's settings to the configuration objects the brain's parts take.

The parts (agent loop, blueprint, sandbox) never read the environment. Each takes the
settings sections it needs, by the same names (``Section.of``), plus constants of its own.
"""

from __future__ import annotations

from jobs.agent.config import AgentConfig
from jobs.agent.pricing import DEFAULT_PRICES
from jobs.blueprint.config import BlueprintConfig
from process.settings import (
    AgentLimits,
    ConversationSettings,
    EgressSettings,
    ModelRoles,
    WorkerSettings,
)
from sandboxes.config import EgressConfig


def agent_config(settings: WorkerSettings) -> AgentConfig:
    return AgentConfig(
        limits=AgentLimits.of(settings),
        roles=ModelRoles.of(settings),
        price_table=DEFAULT_PRICES.with_overrides(settings.prices),
        **ConversationSettings.of(settings).model_dump(),
    )


def blueprint_config(settings: WorkerSettings) -> BlueprintConfig:
    fields = BlueprintConfig.model_fields.keys() - {"sandbox"}
    return BlueprintConfig.model_validate(
        {name: getattr(settings, name) for name in fields if hasattr(settings, name)}
    )


def egress_config(settings: WorkerSettings) -> EgressConfig:
    """The engine's egress proxy, as this worker creates and uses it."""
    egress = EgressSettings.of(settings)
    return EgressConfig(
        proxy=egress.egress_proxy,
        image=egress.egress_proxy_image,
        network=egress.egress_network,
        subnets=egress.egress_subnets,
        deny=tuple(egress.egress_deny),
    )
