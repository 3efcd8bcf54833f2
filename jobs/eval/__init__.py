"""``agents eval``: measure the agent on tasks with hidden tests, through the normal
blueprint (``docs/eval.md``).

- :mod:`jobs.eval.tasks`: the task (SWE-bench's fields) and reading a JSON Lines file;
- :mod:`jobs.eval.history`: tasks from a repository's own commits;
- :mod:`jobs.eval.hidden`: the hidden tests in a sandbox: apply, run, read outcomes;
- :mod:`jobs.eval.records`: an eval, its variants and results, in Redis;
- :mod:`jobs.eval.job`: the RQ jobs that validate a task, then run and grade it;
- :mod:`jobs.eval.report`: JSON Lines, Markdown, the side-by-side table and the chart.
"""
