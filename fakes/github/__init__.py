"""A fake GitHub (REST, the GraphQL mutations the product uses, git over HTTP).

See :mod:`fakes.github.server`.
"""

from fakes.github.server import FakeGitHub, RecordedRequest

__all__ = ["FakeGitHub", "RecordedRequest"]
