"""The event log round-trips through the typed events: every kind is a class."""

from __future__ import annotations

import typing
from datetime import UTC, datetime

import fakeredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from runs import events
from runs.events import EVENT, Event, EventBase, StatusChanged
from runs.record import RunStatus
from runs.store import RunStore

KINDS: list[type[EventBase]] = list(typing.get_args(typing.get_args(Event)[0]))

text = st.text(max_size=40)
moment = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def sample(kind: type[BaseModel]) -> st.SearchStrategy[BaseModel]:
    """Any valid event of ``kind``: every field filled from its type."""
    overrides: dict[str, st.SearchStrategy[object]] = {"at": moment, "id": st.none()}
    for name, field in kind.model_fields.items():
        if name in overrides or name == "kind":
            continue
        if field.annotation in (float, float | None):
            overrides[name] = st.floats(allow_nan=False, allow_infinity=False, width=32)
        elif field.annotation in (str, str | None):
            overrides[name] = text
    return st.builds(kind, **overrides)


def test_every_event_class_is_in_the_union_once_with_its_own_kind() -> None:
    declared = {
        obj
        for obj in vars(events).values()
        if isinstance(obj, type) and issubclass(obj, EventBase) and obj is not EventBase
    }
    assert declared == set(KINDS)
    kinds = [cls.model_fields["kind"].default for cls in KINDS]
    assert len(kinds) == len(set(kinds))


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
@settings(max_examples=15, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_kind_round_trips_through_the_log(kind: type[EventBase], data: st.DataObject) -> None:
    event = data.draw(sample(kind))
    store = RunStore(fakeredis.FakeRedis())
    run = store.create(requester="U1", repo="acme/api", request="x")
    entry = store.append_event(run.id, typing.cast(Event, event))
    back = store.events(run.id)[-1]
    assert type(back) is kind
    assert back == event.model_copy(update={"id": entry})


def test_a_misspelt_field_or_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValidationError):
        StatusChanged(by="x", previous=RunStatus.QUEUED, to=RunStatus.RUNNING, reson="typo")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        EVENT.validate_json('{"kind": "telepathy", "by": "x"}')
