"""What a run's thread says besides its status message: the reply each event deserves.

The reporter (:mod:`bot.reporter`) posts these, once each, as the run's log grows;
here is only what an event says, as Block Kit, from the event and the run as it is
now (a plan's buttons stay live only while that version awaits its answer).
"""

from __future__ import annotations

from typing import Any

from bot.blocks import (
    budget_message,
    decision_message,
    escape,
    escape_keeping_mentions,
    plan_message,
    text_message,
)
from runs.events import (
    ApproveFailed,
    BudgetAsked,
    BudgetDecided,
    ChecksRan,
    DecisionRefused,
    Escalated,
    Event,
    GitHubActivity,
    ModelFellBack,
    PlanDecided,
    PlanProposed,
    PullRequestOpened,
    RootCauseFound,
    SetupEgress,
    SpecialistReviewed,
    StatusChanged,
)
from runs.projection import project
from runs.record import Run, RunStatus


def linkable_url(url: str) -> bool:
    """A web address Slack's ``<url|text>`` link syntax can carry as it is."""
    return url.startswith(("https://", "http://")) and not any(c in url for c in "<>| \n")


def milestone(event: Event, run: Run) -> tuple[str, list[dict[str, Any]]] | None:
    """The thread reply an event deserves, if any."""
    factory = _factory_milestone(event, run)
    if factory is not None:
        return factory
    match event:
        case PullRequestOpened(url=url):
            link = f"<{url}|{escape(url)}>" if linkable_url(url) else escape(url)
            return text_message(f":rocket: Pull request opened: {link}")
        case ChecksRan(passed=False, text=text, fix_round=attempt, last_round=most):
            summary = escape(text or "some checks failed")
            if attempt and most:
                return text_message(
                    f":wrench: Checks failed ({summary}); fixing, attempt {attempt} of {most}."
                )
            return text_message(f":wrench: Checks failed ({summary}).")
        case Escalated(text=text):
            return text_message(f":raised_hand: Escalated: {escape(text)}")
        case SetupEgress(text=text):
            return text_message(f":globe_with_meridians: {escape(text)}")
        case DecisionRefused(text=text, mentions=mentions):
            return text_message(f":no_entry: {escape_keeping_mentions(text, mentions)}")
        case ApproveFailed(text=text):
            return text_message(f":warning: {escape(text)}")
        case StatusChanged(to=RunStatus.AWAITING_DECISION):
            return decision_message(project(run, []))
        case StatusChanged(to=RunStatus.FAILED, reason=reason):
            return text_message(f":x: {run.label} failed: {escape(reason or 'no reason given')}")
        case StatusChanged(to=RunStatus.CANCELLED):
            return text_message(f":no_entry_sign: {run.label} was cancelled by <@{event.by}>.")
        case StatusChanged(to=RunStatus.APPROVED):
            return text_message(f":white_check_mark: {run.label} approved by <@{event.by}>.")
        case StatusChanged(to=RunStatus.MERGED | RunStatus.CLOSED, reason=reason):
            mark = ":tada:" if event.to is RunStatus.MERGED else ":wastebasket:"
            return text_message(f"{mark} {run.label}: {escape(reason or event.to.value)}.")
        case GitHubActivity(text=text, url=url, action=action) if action != "started":
            link = f" (<{url}|on GitHub>)" if url and linkable_url(url) else ""
            return text_message(f":octocat: {escape(text)}{link}")
    return None


def _factory_milestone(event: Event, run: Run) -> tuple[str, list[dict[str, Any]]] | None:
    """The replies of the factory's roles: the plan, the budget question, fallbacks,
    the debugger's note and the specialists' reviews."""
    match event:
        case PlanProposed(version=version):
            spec = next((p for p in run.artifacts.plans if p.version == version), None)
            if spec is None:
                return None
            latest = run.artifacts.plans[-1].version == version
            waiting = run.status is RunStatus.AWAITING_PLAN and latest
            return plan_message(run.label, run.id, spec, open_=waiting)
        case PlanDecided(action="approve", version=version):
            return text_message(
                f":white_check_mark: <@{event.by}> approved plan v{version}; building it."
            )
        case PlanDecided(action="revise", version=version, feedback=feedback):
            quoted = escape((feedback or "")[:500])
            return text_message(
                f":pencil2: <@{event.by}> asked to revise plan v{version}: “{quoted}”. "
                "Writing the next version."
            )
        case BudgetAsked(text=text, can_extend=can_extend):
            ask = run.artifacts.budget_ask
            open_ = run.status is RunStatus.AWAITING_BUDGET and ask is not None
            at = ask.at if open_ and ask is not None else None
            return budget_message(text, run.id, asked_at=at, can_extend=can_extend)
        case BudgetDecided(action="extend", text=text):
            return text_message(f":heavy_plus_sign: <@{event.by}>: {escape(text)}; carrying on.")
        case BudgetDecided(action="stop", text=text):
            return text_message(f":octagonal_sign: <@{event.by}> {escape(text)}.")
        case BudgetDecided(action="timeout", text=text):
            return text_message(f":hourglass: {run.label} {escape(text)}.")
        case ModelFellBack(text=text):
            return text_message(
                f":twisted_rightwards_arrows: {escape(text[:1].upper() + text[1:])}."
            )
        case RootCauseFound(text=text):
            return text_message(
                f":mag: The fix rounds kept failing the same way; a debugger found the root "
                f"cause: {escape(text)}"
            )
        case SpecialistReviewed(text=text, findings=findings) if findings:
            return text_message(f":shield: {escape(text)}")
    return None
