"""The plan a planner writes before any code: a spec with a problem, constraints, an
approach, testable acceptance criteria, risks and tasks.

Once approved in the thread it is the builder's contract (:func:`contract`); the
reviewer judges each acceptance criterion, and the pull request shows them ticked by
those verdicts (:func:`criteria_lines`). Everything in it came from a model that read
the repository, so every renderer here treats it as text, never as markup it trusts.
"""

from __future__ import annotations

from runs.artifacts import ReviewOutcome, Spec
from runs.record import Run


def latest(run: Run) -> Spec | None:
    plans = run.artifacts.plans
    return plans[-1] if plans else None


def approved(run: Run) -> Spec | None:
    """The approved version: the builder's contract, the reviewer's criteria."""
    version = run.artifacts.plan_approved
    if version is None:
        return None
    return next((spec for spec in run.artifacts.plans if spec.version == version), None)


def _items(items: list[str], *, numbered: bool = False) -> str:
    if not items:
        return "- (none)"
    if numbered:
        return "\n".join(f"{n}. {item}" for n, item in enumerate(items, 1))
    return "\n".join(f"- {item}" for item in items)


def spec_markdown(spec: Spec) -> str:
    """The spec as Markdown, section by section (for the builder and the reviewer)."""
    return "\n\n".join(
        [
            f"## Problem\n\n{spec.problem.strip()}",
            f"## Constraints\n\n{_items(spec.constraints)}",
            f"## Approach\n\n{spec.approach.strip()}",
            "## Acceptance criteria\n\n" + _items(spec.acceptance_criteria, numbered=True),
            f"## Risks\n\n{_items(spec.risks)}",
            "## Tasks\n\n" + _items(spec.tasks, numbered=True),
        ]
    )


def contract(spec: Spec) -> str:
    return f"Plan version {spec.version}, approved.\n\n{spec_markdown(spec)}"


def criteria_verdicts(review: ReviewOutcome | None) -> dict[int, tuple[bool, str]]:
    """The reviewer's verdict on each acceptance criterion, by number."""
    verdicts: dict[int, tuple[bool, str]] = {}
    for item in review.criteria if review is not None else []:
        if not isinstance(item, dict):
            continue
        try:
            number = int(item["criterion"])
        except (KeyError, TypeError, ValueError):
            continue
        verdicts[number] = (bool(item.get("met")), str(item.get("note") or "").strip())
    return verdicts


def criteria_lines(spec: Spec, review: ReviewOutcome | None) -> list[str]:
    """The acceptance criteria as a Markdown task list, ticked by the reviewer."""
    verdicts = criteria_verdicts(review)
    lines = []
    for number, criterion in enumerate(spec.acceptance_criteria, 1):
        verdict = verdicts.get(number)
        if verdict is None:
            lines.append(f"- [ ] {criterion} — _not judged by the reviewer_")
            continue
        met, note = verdict
        mark = "x" if met else " "
        word = "met" if met else "**not met**"
        lines.append(f"- [{mark}] {criterion} — {word}" + (f": {note}" if note else ""))
    return lines


def summary_line(spec: Spec) -> str:
    """One line for logs and the plan's event."""
    first = spec.problem.strip().splitlines()[0] if spec.problem.strip() else "a plan"
    return (
        f"plan v{spec.version}: {first[:160]} ({len(spec.acceptance_criteria)} acceptance "
        f"criteria, {len(spec.tasks)} tasks)"
    )
