"""``with thing:`` starts it and always closes it.

Sandboxes, the local fake servers and the GitHub forge all hold something that must be
released (a container, a listening socket, HTTP sessions), so they share this one
context-manager protocol instead of each writing ``__enter__``/``__exit__``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Lifecycle:
    """Subclasses implement ``close``; ``start`` is optional (nothing to start)."""

    def start(self) -> object:
        return self

    def close(self) -> None:
        raise NotImplementedError

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
