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
#: Every label above: an environment image blanks them (a container's labels would be
#: inherited by the image it is committed as, and by every container started from it).
SANDBOX_KEYS = (RUN_ID, STORE, OWNER, OWNER_PROCESS, CREATED_AT, EXPIRES_AT)

#: On an idle container of a warm pool (:mod:`sandboxes.pool`): the pool it belongs to.
POOL = "agents.pool"

#: On an environment image (:mod:`sandboxes.env_images`).
ENV_KEY = "agents.env.key"
ENV_REPO = "agents.env.repo"
#: The deployment (run store) that built it: only its own collector removes it, as only
#: its own Redis knows which of its runs use it.
ENV_OWNER = "agents.env.owner"
#: The commit whose checkout the image holds.
ENV_COMMIT = "agents.env.commit"
ENV_CREATED_AT = "agents.env.created_at"
#: Seconds the build took: how long a run arriving during the next one should expect.
ENV_BUILD_SECONDS = "agents.env.build_seconds"
#: The dependency inputs the key covers, comma-separated (for ``agents env ls``).
ENV_INPUTS = "agents.env.inputs"


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
