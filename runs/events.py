"""Typed events appended to a run's log. The Slack thread is a projection of these."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from runs.record import utcnow


class EventType(StrEnum):
    CREATED = "created"
    STATUS = "status"
    STEP = "step"
    TOOL = "tool"
    ARTIFACT = "artifact"
    CHECKS = "checks"
    COST = "cost"
    MESSAGE = "message"
    ERROR = "error"


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: EventType
    by: str
    at: datetime = Field(default_factory=utcnow)
    data: dict[str, Any] = Field(default_factory=dict)
    #: The Redis stream entry id, set when read back from the log.
    id: str | None = None


# What the Slack reporter turns into thread replies ("milestones"), so the pipeline
# states them once and never needs to know about Slack:
#
# - STATUS            data: {"from", "to", "reason"?}    (written by the store)
# - ARTIFACT          data: {"kind": "pr", "url", "number"}         -> "PR opened"
# - CHECKS            data: {"passed": bool, "attempt": k, "max_attempts": n,
#                            "summary": str}                        -> "fixing, k of n"
# - MESSAGE           data: {"kind": "escalated", "text"}           -> "escalated"
# - MESSAGE           data: {"kind": "egress", "text", "reached", "denied", "failed"}
#                                            -> "setup reached 2 hosts; denied example.com"
MILESTONE_PR = "pr"
MILESTONE_ESCALATED = "escalated"
MILESTONE_EGRESS = "egress"
