"""The labels every sandbox container carries, so anyone can tell whose and how old it is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sandboxes.owner import Owner

RUN_ID = "agents.run_id"
OWNER = "agents.owner"
#: ``boot_id/pid_namespace/start_time`` of the owner; see :mod:`sandboxes.owner`.
OWNER_PROCESS = "agents.owner_process"
CREATED_AT = "agents.created_at"
EXPIRES_AT = "agents.expires_at"
#: Which run store the run lives in: run ids repeat across stores sharing one engine.
STORE = "agents.store"


def sandbox_labels(
    run_id: str, owner: Owner, now: datetime, lifetime: int, store: str = ""
) -> dict[str, str]:
    return {
        RUN_ID: run_id,
        STORE: store,
        OWNER: owner.label,
        OWNER_PROCESS: owner.token,
        CREATED_AT: now.isoformat(timespec="seconds"),
        EXPIRES_AT: (now + timedelta(seconds=lifetime)).isoformat(timespec="seconds"),
    }


def parse_time(value: str | None) -> datetime | None:
    """A label's timestamp, or None if it is missing or malformed (then it is not trusted)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
