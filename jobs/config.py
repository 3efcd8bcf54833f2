"""From the worker's settings to the configuration objects the brain's parts take.

The parts (agent loop, sandbox) never read the environment themselves.
"""

from __future__ import annotations

from jobs.agent.config import AgentConfig, AgentLimits, ModelRoles
from jobs.agent.pricing import DEFAULT_PRICES
from jobs.blueprint.config import BlueprintConfig
from process.settings import WorkerSettings
from sandboxes.config import EgressConfig, SandboxConfig


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
        context_tokens=settings.context_tokens,
    )


def blueprint_config(settings: WorkerSettings) -> BlueprintConfig:
    return BlueprintConfig(
        fix_rounds=settings.fix_rounds,
        escalation=settings.escalation,
        protected_paths=tuple(settings.protected_paths),
        sandbox=SandboxConfig(image=settings.sandbox_image, allow=tuple(settings.egress_allow)),
        sandbox_backend=settings.sandbox_backend,
        draft=settings.draft_prs,
        approve_action=settings.approve_action,
        merge_method=settings.merge_method,
        approvers=tuple(settings.approvers),
        require_github_write=settings.require_github_write,
        user_map=dict(settings.user_map),
        slack_url=settings.slack_url,
        ci_timeout=settings.ci_timeout_seconds,
        ci_poll=settings.ci_poll_seconds,
        ci_settle=settings.ci_settle_seconds,
        ci_fix=settings.ci_fix,
        max_attempts=settings.max_attempts,
        heartbeat_seconds=settings.heartbeat_seconds,
    )


def egress_config(settings: WorkerSettings) -> EgressConfig:
    """The engine's egress proxy, as this worker creates and uses it."""
    return EgressConfig(
        proxy=settings.egress_proxy,
        image=settings.egress_proxy_image,
        subnets=settings.egress_subnets,
        deny=tuple(settings.egress_deny),
    )
