"""Who may do what to a run, and what happens then: the one place every surface asks.

The Slack buttons, the rework modal, replies in a run's thread, ``/agents cancel``, the
CLI, GitHub comments and the worker's approve job all call this package
(``from jobs import decisions``; ``decisions.request_rework(...)``). Each answer is an
:class:`Outcome`: whether anything changed, what to tell the person who asked (an
ephemeral note, a CLI line, a PR comment: the surface chooses), and what to say in the
thread for everyone when something did change.

The rule is one (:func:`may`, in :mod:`jobs.decisions.rules`): a run's requester and
the operator's approvers (``AGENTS_APPROVERS``) may approve, rework, cancel and steer
it, approve or revise its plan, and extend or stop it at its budget; nobody else
changes it. On top of that, approving may also need write access on GitHub
(``AGENTS_REQUIRE_GITHUB_WRITE``), which only the worker can check, so it is checked
in :func:`approve_on_forge`. On GitHub the rule is GitHub's own: write access.

What each decision does, by where it is asked:

- :mod:`jobs.decisions.rules`: the rule and the refusals every answer shares;
- :mod:`jobs.decisions.surface`: approve, rework, cancel, steer, resume;
- :mod:`jobs.decisions.paused`: a paused run's plan and budget questions;
- :mod:`jobs.decisions.github`: a comment or review on the PR, and the PR's end;
- :mod:`jobs.decisions.worker`: the approve and cancel jobs' halves on a worker.

Each change is one checked transition or one uniquely named job, so two clicks, a
click and a reply, or two workers have one effect.
"""

from __future__ import annotations

from jobs.decisions.github import from_github, github_user, pull_request_ended
from jobs.decisions.paused import (
    approve_plan,
    extend_budget,
    may_revise_plan,
    revise_plan,
    stop_at_budget,
)
from jobs.decisions.rules import MAX_FEEDBACK_CHARS, Action, Outcome, may
from jobs.decisions.surface import (
    cancel,
    may_rework,
    request_approval,
    request_rework,
    resume,
    steer,
)
from jobs.decisions.worker import (
    approve_on_forge,
    cancel_on_worker,
    claim_approval,
    remove_sandboxes,
)

__all__ = [
    "MAX_FEEDBACK_CHARS",
    "Action",
    "Outcome",
    "approve_on_forge",
    "approve_plan",
    "cancel",
    "cancel_on_worker",
    "claim_approval",
    "extend_budget",
    "from_github",
    "github_user",
    "may",
    "may_revise_plan",
    "may_rework",
    "pull_request_ended",
    "remove_sandboxes",
    "request_approval",
    "request_rework",
    "resume",
    "revise_plan",
    "steer",
    "stop_at_budget",
]
