"""The blueprint: the factory line that turns a request into a reviewed pull request.

:func:`~jobs.blueprint.runner.run_blueprint` runs a run's checkpointed steps with the
:class:`~jobs.blueprint.deps.Deps` it is given; :mod:`jobs.entrypoints` builds those
inside each RQ job (:mod:`jobs.blueprint.wiring`). See ``docs/blueprint.md``.
"""
