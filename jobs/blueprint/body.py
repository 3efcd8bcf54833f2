"""The pull request's description: the quoted request, the summary, the approved plan
with each acceptance criterion ticked by the reviewer's verdict, the checks and their
results, the reviews (the reviewer's and the specialists'), the debugger's note, the
cost by role and model, a link to the Slack thread, and a reproducibility manifest.
Built from the run record alone."""

from __future__ import annotations

import json
import re

from jobs.blueprint.spec import approved, criteria_lines
from jobs.checks import excerpt, failure_slice
from jobs.forge.steps import RUN_BODY_MARKER
from jobs.safety import SECRET_PATTERNS, mask
from runs.artifacts import CheckResult
from runs.record import Run

MAX_BODY = 60_000  # GitHub refuses bodies over 65,536 characters


def redact_secrets(text: str) -> str:
    """Anything shaped like a credential, masked (the agent's words are untrusted too)."""
    for pattern in SECRET_PATTERNS.values():
        text = pattern.sub(lambda m: f"[redacted: {mask(m.group(0))}]", text)
    return text


def thread_url(run: Run, slack_url: str) -> str | None:
    if not run.channel or not run.thread_ts:
        return None
    return f"{slack_url.rstrip('/')}/archives/{run.channel}/p{run.thread_ts.replace('.', '')}"


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.strip().splitlines())


def _results(run: Run) -> list[CheckResult]:
    if not run.artifacts.check_reports:
        return []
    return list(run.artifacts.check_reports[-1].results)


def checks_section(run: Run) -> str:
    a = run.artifacts
    results = _results(run)
    if not a.check_reports:
        return "No checks were run."
    if not results:
        return (
            "No check commands are configured in `.agents.yml` or detected, so nothing "
            "verified this change. Add them under `checks:` in `.agents.yml`, for example "
            '`checks: ["make test"]`.'
        )
    lines = ["| check | command | result |", "|---|---|---|"]
    for r in results:
        if r.not_run:
            outcome = f"could not run: {r.not_run}"
        elif r.passed:
            outcome = "passed" + (f" ({r.tests} tests)" if r.tests is not None else "")
        elif r.exit_code in (126, 127) and not r.timed_out:
            # The shell's "not executable" / "command not found": a setup problem.
            outcome = (
                f"could not run (exit {r.exit_code}: command not found or not executable in "
                "the sandbox); fix it under `checks:` in `.agents.yml`, or install it with "
                "`setup:`"
            )
        elif r.only_preexisting:
            outcome = "failed, pre-existing only"
        else:
            outcome = "timed out" if r.timed_out else f"failed (exit {r.exit_code})"
        lines.append(f"| {r.name} | `{r.command}` | {outcome} |")
    preexisting = [(r.name, f) for r in results for f in r.failures if f.preexisting]
    if preexisting:
        base = (a.base_commit or "")[:12]
        lines.append("")
        lines.append(
            f"**Pre-existing failures:** these also fail on the base commit `{base}`, so "
            "the agent was not asked to fix them and this change does not address them:"
        )
        lines.extend(f"- `{name}`: `{failure.test_id}`" for name, failure in preexisting)
    if a.fix_rounds_spent:
        lines.append("")
        lines.append(f"Fix rounds used: {a.fix_rounds_spent}.")
        for report in a.check_reports:
            if report.fix_summary:
                lines.append(f"- round {report.round + 1}: {report.fix_summary}")
    not_run = [f"{r.name}: {r.not_run}" for r in results if r.not_run]
    if not_run:
        lines.append("")
        lines.append(
            "**checks could not run:** " + "; ".join(not_run) + ". No test was executed, so "
            "nothing verified this change; fix the repository's setup (`setup:` in "
            "`.agents.yml`) so its tests import."
        )
    if a.escalated:
        lines.append("")
        lines.append(
            "**The checks still fail after the fix rounds; this draft documents the "
            "failures for a human to take over:**"
        )
        lines.append("")
        lines.append("```")
        lines.append(excerpt(failure_slice(results, 6000), 6000).replace("```", "'''"))
        lines.append("```")
    return "\n".join(lines)


def review_section(run: Run) -> str:
    review = run.artifacts.review
    if not review:
        return "No review was made."
    notes = review.notes.strip() or "(no notes)"
    text = f"Verdict: **{review.verdict}** (review {review.round})\n\n{notes}"
    specialists = run.artifacts.specialists
    if specialists:
        lines = ["", "Specialist reviews, called for by the paths this change touches:"]
        for name, found in sorted(specialists.items()):
            count = len(found.findings)
            lines.append(
                f"- **{name}**: {found.verdict}, {count} finding(s)"
                + (" (posted as review comments)" if count else "")
            )
        text += "\n".join(lines)
    return text


def plan_section(run: Run) -> str | None:
    """The approved plan, its acceptance criteria ticked by the reviewer's verdicts."""
    plan = approved(run)
    if plan is None:
        return None
    parts = [
        f"Plan version {plan.version}, approved in the Slack thread before any code was "
        "written. Each acceptance criterion is ticked by the reviewer's verdict.",
        "**Problem.** " + plan.problem.strip(),
        "**Approach.** " + plan.approach.strip(),
        "**Acceptance criteria**\n\n" + "\n".join(criteria_lines(plan, run.artifacts.review)),
    ]
    if plan.risks:
        parts.append("**Risks**\n\n" + "\n".join(f"- {risk}" for risk in plan.risks))
    return "\n\n".join(parts)


def cost_section(run: Run) -> str:
    cost = run.cost
    lines = [
        f"${cost.dollars:.4f} · {cost.total_tokens:,} tokens "
        f"({cost.input_tokens:,} in, {cost.output_tokens:,} out, "
        f"{cost.cache_read_tokens:,} cache read, {cost.cache_write_tokens:,} cache write)"
    ]
    if run.cost_by_role:
        lines += ["", "| role | model | tokens | cost |", "|---|---|---|---|"]
        for role, models in run.cost_by_role.items():
            for model, part in models.items():
                lines.append(
                    f"| {role} | `{model}` | {part.total_tokens:,} | ${part.dollars:.4f} |"
                )
    a = run.artifacts
    if a.on_edit_runs:
        lines.append("")
        lines.append(
            f"On-edit checks: {a.on_edit_runs} run(s), {a.on_edit_seconds:.1f} s added to "
            "this iteration."
        )
    return "\n".join(lines)


def pr_body(run: Run, *, slack_url: str, requester_login: str | None = None) -> str:
    a = run.artifacts
    summary = (a.summary or "(no summary)").strip()
    if a.budget_stopped:
        summary = (
            "**This run was stopped at its budget before it finished.** This draft holds "
            "the change as it was then; what was left of the work, checks and review did "
            "not run on it.\n\n" + summary
        )
    parts = [_quote(run.request), "## Summary\n\n" + summary]
    plan = plan_section(run)
    if plan is not None:
        parts.append("## Plan\n\n" + plan)
    if a.feedback or a.earlier_summaries:
        history = [f"- iteration {n}: {s}" for n, s in enumerate(a.earlier_summaries, 1)]
        history += [
            f"- feedback for iteration {run.iteration} from Slack user {f.by}: {f.text}"
            for f in a.feedback
        ]
        parts.append("## Iterations\n\n" + "\n".join(history))
    parts.append("## Checks\n\n" + checks_section(run))
    parts.append("## Review\n\n" + review_section(run))
    if a.root_cause:
        parts.append(
            "## Debugging\n\nThe fix rounds kept failing on the same checks, so a debugger "
            "looked for the root cause; the builder got this note:\n\n" + a.root_cause.strip()
        )
    if a.notes_for_reviewer:
        parts.append("## Notes from the agent\n\n" + a.notes_for_reviewer.strip())
    parts.append("## Cost\n\n" + cost_section(run))
    manifest = json.dumps(
        a.manifest.model_dump(mode="json") if a.manifest else {}, indent=2, sort_keys=True
    )
    parts.append(
        "## Reproducibility\n\n<details><summary>Manifest</summary>\n\n"
        f"```json\n{manifest}\n```\n\n</details>"
    )
    who = f"@{requester_login}" if requester_login else f"Slack user {run.requester}"
    origin = f"Run #{run.id} (iteration {run.iteration}), requested by {who}"
    link = thread_url(run, slack_url)
    if link:
        origin += f" in [this Slack thread]({link})"
    parts.append(
        "---\n\n" + origin + ". Opened by the agents bot; review it like any other change."
    )
    parts.append(RUN_BODY_MARKER.format(run_id=run.id))
    body = redact_secrets("\n\n".join(parts) + "\n")
    if len(body) > MAX_BODY:
        body = body[: MAX_BODY - 200] + "\n\n[... description cut to GitHub's limit ...]\n"
    return body


def section_titles(body: str) -> list[str]:
    return re.findall(r"^## (.+)$", body, flags=re.MULTILINE)
