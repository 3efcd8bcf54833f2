"""``with thing:`` starts it and always closes it.

Sandboxes, the local fake servers, the GitHub forge and a run's heartbeat all hold
something that must be released (a container, a listening socket, HTTP sessions, a
thread and a Redis key), so they share this one context-manager protocol instead of
each writing ``__enter__``/``__exit__``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class Lifecycle(ABC):
    """Subclasses implement ``close``; ``start`` is optional (nothing to start)."""

    def start(self) -> object:
        return self

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
