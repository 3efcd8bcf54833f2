"""Fixtures the reliability tests share.

- ``docker_client`` is the sandbox tests' own: a client of the Docker engine that holds
  the sandbox image, skipping the test without one.
- ``workers``: `agents worker` processes for one test, stopped afterwards
  (:mod:`tests.reliability.harness`).
"""

from __future__ import annotations

from tests.reliability.harness import workers
from tests.sandboxes.conftest import docker_client

__all__ = ["docker_client", "workers"]
