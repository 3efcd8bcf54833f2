"""The two jobs of an eval, on any worker: validate a task, then run and grade it.

Validation runs the hidden tests where they must fail (the base commit with the test
changes) and, for a task from history, where they must pass (the commit itself), so a
task whose tests cannot tell a fix apart is dropped with the reason before any model
is paid for. A valid task then enqueues one job per variant. Each runs the task
through the normal blueprint (:func:`jobs.blueprint.runner.run_blueprint`) as an
evaluation run, which stops after the review and never publishes, in its own sandbox
at the base commit, where the hidden tests are not. Then a fresh sandbox takes the
agent's change, the test changes on top, and runs the hidden tests: resolved when all
of ``FAIL_TO_PASS`` and ``PASS_TO_PASS`` pass.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
from rq import Callback, Queue
from rq.job import Job

from jobs.blueprint.deps import Deps, ModelProvider
from jobs.blueprint.providers import NullProvider, OracleProvider, ReplayProvider
from jobs.blueprint.runner import run_blueprint
from jobs.blueprint.sandbox import (
    RepoFiles,
    apply_patch,
    run_setup,
    sandbox_config,
    set_network,
    workspace,
)
from jobs.blueprint.steps.prepare import read_config
from jobs.blueprint.wiring import model_provider, open_deps
from jobs.eval import hidden
from jobs.eval.history import is_test_file
from jobs.eval.records import BUILT_IN_MODELS, EvalSpec, EvalStore, TaskResult, Validation, Variant
from jobs.eval.tasks import EvalTask
from process import settings
from process.exceptions import (
    AgentsError,
    ForgeError,
    RepoCacheError,
    SandboxError,
    StepFailed,
    TaskDropped,
)
from runs.events import AgentTurn
from runs.record import Run, RunStatus
from runs.store import RunStore
from sandboxes.protocol import Sandbox

log = logging.getLogger(__name__)

VALIDATE_JOB = "jobs.entrypoints.eval_validate_job"
TASK_JOB = "jobs.entrypoints.eval_task_job"
#: What a task's infrastructure may fail with; the task is then dropped (validation)
#: or unresolved (a run), with the message.
TASK_ERRORS = (RepoCacheError, SandboxError, StepFailed, ForgeError)


# -- enqueueing -----------------------------------------------------------------------


def _meta(eval_id: str, index: int, variant: int | None) -> dict[str, Any]:
    return {"eval_id": eval_id, "index": index, "variant": variant}


def enqueue_validation(queue: Queue, eval_id: str, index: int, timeout: int) -> None:
    queue.enqueue_call(
        VALIDATE_JOB,
        args=(eval_id, index),
        job_id=f"eval-{eval_id}-check-{index}",
        timeout=timeout,
        result_ttl=3600,
        failure_ttl=86400,
        description=f"eval {eval_id}: validate task {index}",
        meta=_meta(eval_id, index, None),
        on_failure=Callback(on_eval_job_failure),
    )


def enqueue_runs(queue: Queue, eval_id: str, index: int, variants: int, timeout: int) -> None:
    for variant in range(variants):
        queue.enqueue_call(
            TASK_JOB,
            args=(eval_id, variant, index),
            job_id=f"eval-{eval_id}-v{variant}-t{index}",
            timeout=timeout,
            result_ttl=3600,
            failure_ttl=86400,
            description=f"eval {eval_id}: task {index}, variant {variant}",
            meta=_meta(eval_id, index, variant),
            on_failure=Callback(on_eval_job_failure),
        )


def on_eval_job_failure(
    job: Job,
    connection: redis.Redis,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> None:
    """A job that crashed (or whose worker died) still leaves its task an answer, so an
    eval never waits for ever: a validation is dropped, a run unresolved, with why."""
    meta = job.meta
    store = EvalStore(connection, str(meta["eval_id"]))
    index = int(meta["index"])
    why = f"{exc_type.__name__}: {exc}" if exc_type is not None else "the job failed"
    if meta.get("variant") is None:
        store.save_validation(index, Validation(dropped=f"could not validate the task: {why}"))
        return
    variant = int(meta["variant"])
    spec = store.spec()
    task = store.task(index)
    result = TaskResult(
        instance_id=task.instance_id,
        variant=spec.variants[variant].name,
        resolved=False,
        failure_reason=f"the eval job failed: {why}",
    )
    store.save_result(variant, index, result)


# -- sandboxes ------------------------------------------------------------------------


def open_at(deps: Deps, repo: str, commit: str, label: str) -> Sandbox:
    """A set-up sandbox with ``repo`` at ``commit`` (network as for the checks)."""
    url = deps.forge.clone_url(repo)
    try:
        archive = workspace(deps, url, commit)
    except RepoCacheError:
        raise TaskDropped(f"commit {commit} is not in {repo}") from None
    config, _lowered = read_config(RepoFiles(archive), deps.config, deps.agent)
    sandbox = deps.sandboxes(label, sandbox_config(deps.config.sandbox, config), archive)
    try:
        sandbox.start()
        run_setup(sandbox, config)
        set_network(sandbox, config, "checks")
    except BaseException:
        sandbox.close()
        raise
    return sandbox


def existing(sandbox: Sandbox, paths: list[str]) -> list[str]:
    if not paths:
        return []
    found = sandbox.exec(
        ["sh", "-c", 'for p in "$@"; do [ -f "$p" ] && echo "$p"; done; true', "sh", *paths],
        timeout=60,
    )
    return [line for line in found.stdout.splitlines() if line in paths]


def _tests_of_patch(task: EvalTask) -> list[str]:
    return [p for p in hidden.patch_paths(task.test_patch) if is_test_file(p) and p.endswith(".py")]


# -- validation -----------------------------------------------------------------------


def validate(deps: Deps, spec: EvalSpec, task: EvalTask, label: str) -> Validation:
    """The task's hidden tests, checked; raises :class:`TaskDropped` with the reason."""
    with open_at(deps, task.repo, task.base_commit, label) as before:
        hidden.apply_test_patch(before, task.test_patch)
        if task.fail_to_pass is not None:
            files = existing(before, hidden.files_of(task.hidden_tests))
            at_base = hidden.run_tests(
                before, files, command=spec.test_command, timeout=spec.test_timeout
            )
            passing = [t for t in task.fail_to_pass if at_base.get(t, False)]
            if passing:
                raise TaskDropped(
                    f"{len(passing)} FAIL_TO_PASS test(s) already pass at the base commit "
                    f"({passing[0]}): they cannot tell a fix apart"
                )
            return Validation(
                fail_to_pass=task.fail_to_pass, pass_to_pass=list(task.pass_to_pass or [])
            )
        files = existing(before, _tests_of_patch(task))
        if not files:
            raise TaskDropped("the commit's test changes hold no Python test file to run")
        at_base = hidden.run_tests(
            before, files, command=spec.test_command, timeout=spec.test_timeout
        )
    assert task.commit is not None
    with open_at(deps, task.repo, task.commit, label) as after:
        at_commit = hidden.run_tests(
            after, existing(after, files), command=spec.test_command, timeout=spec.test_timeout
        )
    fail_to_pass, pass_to_pass = hidden.derive(at_base, at_commit)
    if not fail_to_pass:
        why = "no test passes at the commit" if not any(at_commit.values()) else ""
        raise TaskDropped(
            "no test fails at the base commit with the test changes and passes at the "
            "commit, so the tests cannot tell a fix apart" + (f" ({why})" if why else "")
        )
    return Validation(fail_to_pass=fail_to_pass, pass_to_pass=pass_to_pass)


def validate_task(connection: redis.Redis, eval_id: str, index: int, queue: Queue) -> Validation:
    """Validate task ``index``, save the outcome, and enqueue its runs if it is valid."""
    store = EvalStore(connection, eval_id)
    spec = store.spec()
    task = store.task(index)
    worker = settings.load(settings.WorkerSettings)
    try:
        with open_deps(worker, store.runs(), models=NullProvider()) as deps:
            url = deps.forge.clone_url(task.repo)
            deps.cache.mirror(url, auth_header=deps.git_auth(url))
            validation = validate(deps, spec, task, f"eval-{eval_id}-{index}")
    except TaskDropped as err:
        validation = Validation(dropped=str(err))
    except TASK_ERRORS as err:
        validation = Validation(dropped=f"could not validate the task: {err}")
    store.save_validation(index, validation)
    if validation.dropped is None:
        enqueue_runs(queue, eval_id, index, len(spec.variants), worker.job_timeout)
    return validation


# -- runs -----------------------------------------------------------------------------


def variant_overrides(variant: Variant) -> dict[str, Any]:
    """The worker settings a variant changes (a model id sets both model roles)."""
    chosen = dict(variant.settings)
    model = variant.model
    if model and model not in BUILT_IN_MODELS and model != "anthropic":
        if model.startswith("replay:"):
            chosen.update(model_backend="replay", replay_transcript=model.removeprefix("replay:"))
        else:
            chosen.update(model_backend="anthropic", model_builder=model, model_reviewer=model)
    elif model == "anthropic":
        chosen["model_backend"] = "anthropic"
    return chosen


def provider_for(
    variant: Variant, task: EvalTask, worker: settings.WorkerSettings
) -> ModelProvider:
    if variant.model == "oracle":
        if not task.patch:
            raise TaskDropped("--model oracle needs the task's true change (its `patch` field)")
        return OracleProvider(task.patch)
    if variant.model == "null":
        return NullProvider()
    if variant.model.startswith("replay:"):
        return ReplayProvider(Path(variant.model.removeprefix("replay:")))
    return model_provider(worker)


def turns_of(runs: RunStore, run_id: int) -> int:
    return sum(1 for event in runs.events(run_id) if isinstance(event, AgentTurn))


def result_of(run: Run, variant: str, task: EvalTask, turns: int) -> TaskResult:
    cost = run.cost
    prompt = cost.input_tokens + cost.cache_read_tokens + cost.cache_write_tokens
    end = run.finished_at or run.updated_at
    return TaskResult(
        instance_id=task.instance_id,
        variant=variant,
        resolved=False,
        dollars=cost.dollars,
        tokens=cost.total_tokens,
        input_tokens=cost.input_tokens,
        output_tokens=cost.output_tokens,
        cache_read_tokens=cost.cache_read_tokens,
        cache_write_tokens=cost.cache_write_tokens,
        cache_share=round(cost.cache_read_tokens / prompt, 4) if prompt else 0.0,
        turns=turns,
        fix_rounds_spent=run.artifacts.fix_rounds_spent,
        wall_seconds=round(max((end - run.created_at).total_seconds(), 0.0), 3),
        patch=run.artifacts.patch or "",
        run_id=run.id,
        status=run.status.value,
    )


def grade(
    deps: Deps, spec: EvalSpec, task: EvalTask, check: Validation, result: TaskResult, label: str
) -> TaskResult:
    """The hidden tests on the agent's change: resolved, or the reason it is not."""
    run_error = result.failure_reason
    with open_at(deps, task.repo, task.base_commit, label) as sandbox:
        if result.patch.strip():
            apply_patch(sandbox, result.patch)
        try:
            hidden.apply_test_patch(sandbox, task.test_patch)
        except TaskDropped as err:
            bad = f"the hidden tests do not apply on the agent's change: {err}"
            return result.model_copy(update={"failure_reason": bad})
        tests = check.fail_to_pass + check.pass_to_pass
        files = existing(sandbox, hidden.files_of(tests))
        outcomes = hidden.run_tests(
            sandbox, files, command=spec.test_command, timeout=spec.test_timeout
        )
    wanted = {t: outcomes.get(t, False) for t in tests}
    why: str | None = hidden.unresolved(outcomes, check.fail_to_pass, check.pass_to_pass)
    if why and run_error:
        why = f"{run_error} — {why}"
    return result.model_copy(
        update={
            "resolved": why is None,
            "failure_reason": why,
            "tests": wanted,
            "fail_to_pass": check.fail_to_pass,
            "pass_to_pass": check.pass_to_pass,
        }
    )


def run_task(
    connection: redis.Redis, eval_id: str, variant_index: int, index: int, *, by: str
) -> TaskResult:
    """Run task ``index`` under variant ``variant_index``, grade it, save the result."""
    store = EvalStore(connection, eval_id)
    spec = store.spec()
    task = store.task(index)
    variant = spec.variants[variant_index]
    check = store.validation(index)
    result = TaskResult(instance_id=task.instance_id, variant=variant.name, resolved=False)
    if check is None or check.dropped is not None:
        result.failure_reason = "the task was not validated"
        store.save_result(variant_index, index, result)
        return result
    try:
        worker = settings.load(settings.WorkerSettings, **variant_overrides(variant))
        provider = provider_for(variant, task, worker)
        runs = store.runs()
        with open_deps(worker, runs, models=provider) as deps:
            result = _run_and_grade(deps, runs, spec, task, check, variant, by=by)
    except (TaskDropped, AgentsError) as err:
        result.failure_reason = str(err)
    store.save_result(variant_index, index, result)
    return result


def _run_and_grade(
    deps: Deps,
    runs: RunStore,
    spec: EvalSpec,
    task: EvalTask,
    check: Validation,
    variant: Variant,
    *,
    by: str,
) -> TaskResult:
    run = runs.create(
        requester="eval", repo=task.repo, request=task.problem_statement, by=f"eval:{spec.id}"
    )

    def as_task(r: Run) -> None:
        r.evaluation = True
        r.artifacts.base_commit = task.base_commit

    runs.update(run.id, as_task)
    final = run_blueprint(deps, run.id, by=by)
    result = result_of(final, variant.name, task, turns_of(runs, run.id))
    if final.status is RunStatus.FAILED:
        result.failure_reason = final.error or "the run failed"
    elif final.status is not RunStatus.EVALUATED:
        result.failure_reason = f"the run ended {final.status.value}"
    try:
        return grade(deps, spec, task, check, result, str(run.id))
    except TASK_ERRORS as err:
        return result.model_copy(update={"failure_reason": f"could not grade the task: {err}"})
