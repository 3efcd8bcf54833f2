"""Repository environments: a checkout plus everything its setup installed, built once
per key as an image on the worker's engine and reused by every sandbox of every run.

:mod:`keys` says what an environment depends on, :mod:`devcontainer` and
:mod:`dockerfile` read what a repository brings, :mod:`builder` builds one,
:mod:`service` finds, builds (once, under a lock) and opens them for a run,
:mod:`collect` keeps them within the disk budget and :mod:`upkeep` is the worker's
thread that rebuilds them in the background and keeps the warm pools filled.
See ``docs/environments.md``.
"""
