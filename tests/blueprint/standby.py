"""A worker process started ahead of need, for tests that kill workers and put new
ones in their place.

``python -m tests.blueprint.standby MODULE ARGS...`` imports ``MODULE`` (``cli.main``,
or ``tests.reliability.fault_worker``) and the jobs' code, as ``agents worker`` does
before it registers, then waits for a line on stdin. On one, it runs ``MODULE``'s
``main`` with ``ARGS``, as ``python -m MODULE ARGS`` would; at the end of stdin without
one, it exits (it was not needed).

Why: those imports take seconds (longer on a loaded machine). A test that started the
new worker only after the kill left the slot empty that long after every kill; the
soak and the SIGKILL-in-every-step test do that tens of times. The worker itself, once
told to go, is the same code as ``python -m MODULE`` (see :meth:`Workers.standby`).
"""

from __future__ import annotations

import importlib
import sys


def main() -> int:
    name, *args = sys.argv[1:]
    module = importlib.import_module(name)
    # What `jobs.worker.start_worker` imports first (the jobs' code, for the horses).
    importlib.import_module("jobs.entrypoints")
    if not sys.stdin.readline():
        return 0
    sys.argv = [name, *args]
    code: int = module.main()
    return code


if __name__ == "__main__":
    sys.exit(main())
