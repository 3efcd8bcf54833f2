"""``agents eval``: measure the agent on tasks with hidden tests (``docs/eval.md``).

Tasks come from a repository's history (``--repo PATH|owner/name --from-history N``) or
a SWE-bench-format JSON Lines file (``--tasks FILE``). Each task is validated, then run
under each variant (``--model``, or ``--compare model=A model=B``) by RQ jobs on the
queue, so every worker listening on it shares the eval; ``--workers N`` starts N local
ones for this eval alone. A progress bar shows done, resolved, failed and cost so far.
The reports (JSON Lines, Markdown, a PNG chart) are written when every task has its
result; an eval stopped early (Ctrl-C, ``--timeout``, its workers gone) writes them
marked INCOMPLETE and exits 1.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from process import settings
from process.exceptions import EvalInputError, ForgeError, RepoCacheError

if TYPE_CHECKING:
    import redis

    from jobs.eval.records import EvalStore, Variant
    from jobs.eval.tasks import Dropped, EvalTask

EXIT_INCOMPLETE = 1
EXIT_USAGE = 2
POLL_SECONDS = 0.5


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="measure the agent on tasks with hidden tests (history or SWE-bench format)",
        description="Run tasks through the normal blueprint, never publishing, and grade "
        "each with tests the agent never sees. Writes results.jsonl, report.md and "
        "chart.png. Built-in models needing no key: --model oracle (applies the true "
        "change: must resolve 100%%) and --model null (changes nothing: must resolve 0%%).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tasks", type=Path, help="a SWE-bench-format JSON Lines file")
    source.add_argument(
        "--repo", help="a local git repository (published to the local forge) or owner/name"
    )
    parser.add_argument(
        "--from-history",
        type=int,
        metavar="N",
        help="with --repo: take N recent commits that change both source and tests",
    )
    parser.add_argument(
        "--model",
        default="",
        help="oracle, null, anthropic, replay:PATH, or a model id (default: the worker's)",
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="KEY=VALUE[,KEY=VALUE]",
        help="two or more variants side by side, e.g. model=A model=B, or fix_rounds=0 "
        "fix_rounds=2",
    )
    parser.add_argument("--out", type=Path, help="report directory (default: eval-<id>)")
    parser.add_argument(
        "--workers", type=int, default=0, help="start N local workers for this eval"
    )
    parser.add_argument("--queue", help="RQ queue (default: AGENTS_QUEUE)")
    parser.add_argument(
        "--test-command",
        default="python3 -m pytest",
        help="how the hidden tests run in the sandbox (pytest; its JUnit report is read)",
    )
    parser.add_argument("--test-timeout", type=float, default=900.0, help="seconds per test run")
    parser.add_argument("--timeout", type=float, help="give up (INCOMPLETE) after this many s")
    parser.add_argument(
        "--sandbox", choices=["docker", "local", "auto"], help="sandbox backend of local workers"
    )
    parser.add_argument("--forge", choices=["local", "github"], help="default: AGENTS_FORGE")
    parser.add_argument("--forge-dir", type=Path, help="the local forge's directory")
    parser.set_defaults(func=handle)


def _fail(message: str) -> int:
    print(f"agents eval: {message}", file=sys.stderr)
    return EXIT_USAGE


def variants_of(args: argparse.Namespace) -> list[Variant]:
    from jobs.eval.records import Variant, parse_variant

    if args.compare:
        if len(args.compare) < 2:
            raise EvalInputError("--compare needs two or more variants, e.g. model=A model=B")
        variants = [parse_variant(text, args.model) for text in args.compare]
        if len({v.name for v in variants}) != len(variants):
            raise EvalInputError("--compare names the same variant twice")
        return variants
    return [Variant(name=f"model={args.model}" if args.model else "default", model=args.model)]


def _keyless(variants: list[Variant]) -> bool:
    from jobs.eval.records import BUILT_IN_MODELS

    return all(v.model in BUILT_IN_MODELS for v in variants)


def eval_overrides(args: argparse.Namespace, variants: list[Variant]) -> dict[str, Any]:
    chosen: dict[str, Any] = {}
    if args.sandbox:
        chosen["sandbox_backend"] = args.sandbox
    if args.forge:
        chosen["forge"] = args.forge
    if args.forge_dir:
        chosen["local_forge_dir"] = args.forge_dir
    if args.queue:
        chosen["queue"] = args.queue
    if _keyless(variants):
        chosen["model_backend"] = "replay"  # the built-in models need no key
    return chosen


def import_history(directory: Path, forge_dir: Path) -> str:
    """A local git repository, with its whole history, as a repository of the local
    forge: ``local/<directory>-<head>``; reused when it is already there."""
    import git

    from jobs.forge.local import LocalForge

    try:
        with git.Repo(directory) as source:
            head = source.head.commit.hexsha
            branch = source.active_branch.name
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, TypeError, ValueError):
        raise EvalInputError(
            f"{directory} is not a git repository on a branch: history mode needs its commits"
        ) from None
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", directory.resolve().name).strip("-.")[:40] or "repo"
    name = f"local/{slug}-{head[:8]}"
    forge = LocalForge(forge_dir)
    if (forge.repo_path(name) / "HEAD").is_file():
        return name
    bare = forge.create_repo(name, default_branch=branch)
    subprocess.run(
        ["git", "push", "--quiet", str(bare), "refs/heads/*:refs/heads/*"],
        cwd=directory,
        check=True,
        capture_output=True,
    )
    return name


def history(worker: settings.WorkerSettings, repo: str, count: int) -> list[EvalTask]:
    from jobs.blueprint.wiring import git_auth_for, open_forge
    from jobs.eval.history import history_tasks
    from sandboxes.cache import RepoCache

    forge = open_forge(worker)
    try:
        url = forge.clone_url(repo)
        cache = RepoCache(Path(worker.cache_dir) / "repos")
        cache.mirror(url, auth_header=git_auth_for(worker)(url))
        branch = forge.default_branch(repo)
        lookup = getattr(forge, "pull_for_commit", None)
        tasks = history_tasks(cache, url, repo, branch, count, pull_for=lookup)
    finally:
        forge.close()
    if not tasks:
        raise EvalInputError(
            f"{repo}: no recent commit on {branch} changes both source and test files"
        )
    return tasks


def gather(
    args: argparse.Namespace, worker: settings.WorkerSettings, variants: list[Variant]
) -> tuple[list[EvalTask], list[Dropped]]:
    from jobs.eval.tasks import Dropped, load_tasks

    dropped: list[Dropped] = []
    if args.tasks is not None:
        tasks, dropped = load_tasks(args.tasks)
    else:
        if not args.from_history or args.from_history < 1:
            raise EvalInputError("--repo needs --from-history N (N >= 1)")
        repo = args.repo
        if Path(repo).is_dir():
            if worker.forge != "local":
                raise EvalInputError("a local directory needs --forge local")
            repo = import_history(Path(repo), worker.local_forge_dir)
            print(f"published {args.repo} with its history to the local forge as {repo}")
        elif not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
            raise EvalInputError(f"--repo {repo!r} is neither a directory nor owner/name")
        tasks = history(worker, repo, args.from_history)
        if len(tasks) < args.from_history:
            print(f"only {len(tasks)} qualifying commit(s) found of the {args.from_history} asked")
    if any(v.model == "oracle" for v in variants):
        keep = [t for t in tasks if t.patch]
        reason = "--model oracle needs the task's true change (its `patch` field)"
        dropped += [Dropped(instance_id=t.instance_id, reason=reason) for t in tasks if not t.patch]
        tasks = keep
    if not tasks:
        raise EvalInputError("no task is left to run")
    return tasks, dropped


def bar(done: int, expected: int, resolved: int, failed: int, dollars: float) -> str:
    width = 24
    filled = width * done // expected if expected else width
    return (
        f"[{'#' * filled}{'-' * (width - filled)}] {done}/{expected} done · "
        f"{resolved} resolved · {failed} failed · ${dollars:.2f}"
    )


def start_workers(count: int, worker: settings.WorkerSettings, keyless: bool) -> list[Any]:
    env = dict(os.environ, AGENTS_QUEUE=worker.queue, REDIS_URL=worker.redis_url)
    env.update(
        AGENTS_SANDBOX_BACKEND=worker.sandbox_backend,
        AGENTS_FORGE=worker.forge,
        AGENTS_LOCAL_FORGE_DIR=str(worker.local_forge_dir),
        AGENTS_LOG_LEVEL="WARNING",
    )
    if keyless:
        env["AGENTS_MODEL_BACKEND"] = "replay"
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli.main",
                "worker",
                "--burst",
                "--name",
                f"eval-{i}-{os.getpid()}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for i in range(count)
    ]


def follow(
    store: EvalStore,
    total_tasks: int,
    variants: int,
    *,
    deadline: float | None,
    alive: Callable[[], bool],
) -> bool:
    """Show progress until every task has its results; False if stopped before."""
    shown = ""
    tty = sys.stderr.isatty()
    while True:
        checks = store.validations()
        results = store.results()
        valid = sum(1 for c in checks.values() if c.dropped is None)
        pending = total_tasks - len(checks)
        expected = (valid + pending) * variants
        done = len(results)
        resolved = sum(r.resolved for r in results.values())
        dollars = sum(r.dollars for r in results.values())
        line = bar(done, expected, resolved, done - resolved, dollars)
        if line != shown:
            print(f"\r{line}" if tty else line, end="" if tty else "\n", file=sys.stderr)
            shown = line
        if pending == 0 and done >= expected:
            if tty:
                print(file=sys.stderr)
            return True
        if (deadline is not None and time.monotonic() > deadline) or not alive():
            if tty:
                print(file=sys.stderr)
            return False
        time.sleep(POLL_SECONDS)


def handle(args: argparse.Namespace) -> int:
    try:
        variants = variants_of(args)
        worker = settings.load(settings.WorkerSettings, **eval_overrides(args, variants))
        if args.repo and args.from_history is None:
            raise EvalInputError("--repo needs --from-history N")
        tasks, dropped = gather(args, worker, variants)
    except (EvalInputError, ForgeError, RepoCacheError) as err:
        return _fail(str(err))
    return run_eval(args, worker, variants, tasks, dropped)


def run_eval(
    args: argparse.Namespace,
    worker: settings.WorkerSettings,
    variants: list[Variant],
    tasks: list[EvalTask],
    dropped: list[Dropped],
) -> int:
    from rq import Queue, Worker

    from jobs.eval.job import enqueue_validation
    from jobs.eval.records import EvalSpec, EvalStore
    from jobs.worker import redis_for_rq

    connection: redis.Redis = redis_for_rq(worker.redis_url)
    store = EvalStore(connection, EvalStore.new_id())
    spec = EvalSpec(
        id=store.id,
        variants=variants,
        tasks=len(tasks),
        test_command=args.test_command,
        test_timeout=args.test_timeout,
        queue_name=worker.queue,
    )
    store.create(spec, tasks)
    queue = Queue(worker.queue, connection=connection)
    for index in range(len(tasks)):
        enqueue_validation(queue, store.id, index, worker.job_timeout)
    names = ", ".join(v.name for v in variants)
    print(f"eval {store.id}: {len(tasks)} task(s) x {len(variants)} variant(s) ({names})")
    local = start_workers(args.workers, worker, _keyless(variants)) if args.workers > 0 else []
    if not local and not Worker.all(queue=queue):
        print(
            f"no worker listens on queue {worker.queue!r}: start `agents worker` "
            "(or pass --workers N); waiting",
            file=sys.stderr,
        )
    deadline = time.monotonic() + args.timeout if args.timeout else None

    def alive() -> bool:
        return not local or any(p.poll() is None for p in local) or bool(queue.count)

    try:
        complete = follow(store, len(tasks), len(variants), deadline=deadline, alive=alive)
    except KeyboardInterrupt:
        complete = False
    finally:
        for process in local:
            if process.poll() is None:
                process.terminate()
        for process in local:
            process.wait(timeout=60)
    return write(args, store, variants, dropped, complete)


def write(
    args: argparse.Namespace,
    store: EvalStore,
    variants: list[Variant],
    dropped: list[Dropped],
    complete: bool,
) -> int:
    from jobs.eval.report import summarize_variants, summary_table, write_reports

    tasks = store.tasks()
    checks = store.validations()
    valid = [i for i, c in checks.items() if c.dropped is None]
    results = [r for (_, i), r in sorted(store.results().items()) if i in valid]
    expected = len(valid) * len(variants) + (len(tasks) - len(checks)) * len(variants)
    all_dropped = [*dropped, *store.dropped()]
    out = args.out or Path(f"eval-{store.id}")
    title = f"agents eval {store.id}: {len(tasks)} task(s)"
    paths = write_reports(
        out,
        title,
        results,
        [v.name for v in variants],
        all_dropped,
        [tasks[i].instance_id for i in sorted(valid)],
        expected=expected,
    )
    print(summary_table(summarize_variants(results, [v.name for v in variants])))
    if all_dropped:
        print(f"{len(all_dropped)} task(s) dropped (reasons in {paths['markdown']})")
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    if not complete or len(results) != expected:
        print(
            f"agents eval: INCOMPLETE: {len(results)} of {expected} task runs finished; "
            "the reports say so",
            file=sys.stderr,
        )
        return EXIT_INCOMPLETE
    return 0
