"""Typed events appended to a run's log. The Slack thread is a projection of these."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.run import utcnow


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
