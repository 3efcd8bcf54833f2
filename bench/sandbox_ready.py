"""How long until a sandbox answers: ``start()`` to the first ``exec`` result.

A synthetic ~5,000-file repository is measured three ways, against the floor of
``docker run --rm IMAGE true`` measured in the same run:

* cold: the worker has never seen the repository: clone the mirror, build the
  workspace archive, start, first exec;
* warm, new commit: the mirror exists (refreshed with a fetch); build the archive
  for the commit, start, first exec;
* warm: the archive for the commit is cached too (a retry or rework); start, first exec.

For each, "ready" is ``start()`` to the first exec result and "end to end" adds the
cache work before it. The tmpfs workspace (the default) and a disk workspace are
both measured.

    python bench/sandbox_ready.py [--files 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from docker import DockerClient

from bench.repo_fixture import commit_change, make_repo
from bench.stats import Figure, Result, Target
from sandboxes.cache import RepoCache
from sandboxes.config import SandboxConfig
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.engine import connect


@dataclass(frozen=True)
class Sample:
    raw: float
    ready: float
    total: float


def raw_docker_run(image: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image, "true"],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def measure(
    cache: RepoCache, url: str, config: SandboxConfig, client: DockerClient, refresh: bool
) -> Sample:
    """One sandbox, with a raw ``docker run`` right before it to compare against."""
    raw = raw_docker_run(config.image)
    started = time.perf_counter()
    if refresh:
        cache.mirror(url)
    workspace = cache.workspace(url, "HEAD")
    prepared = time.perf_counter() - started
    sandbox = DockerSandbox("bench", config, workspace=workspace, client=client)
    try:
        started = time.perf_counter()
        sandbox.start()
        result = sandbox.exec("true")
        ready = time.perf_counter() - started
        assert result.ok, result.stderr
    finally:
        sandbox.close()
    return Sample(raw=raw, ready=ready, total=prepared + ready)


Row = tuple[str, str, list[Sample]]


def measure_all(
    root: Path, files: int, rounds: int, workspaces: tuple[str, ...] = ("tmpfs", "disk")
) -> tuple[list[float], list[Row], str]:
    """Every case for each workspace kind; returns the raw floor, the rows and the image."""
    client = connect()
    config = SandboxConfig()
    rows: list[Row] = []
    origin = root / "origin"
    make_repo(origin, files=files)
    url = str(origin)
    for _ in range(2):  # image layers in the page cache, as on any busy worker
        raw_docker_run(config.image)
    raw = [raw_docker_run(config.image) for _ in range(rounds)]  # for the table's floor
    sizes = {"tmpfs": config.workspace_size_mb, "disk": None}
    for label in workspaces:
        cfg = config.with_changes(workspace_size_mb=sizes[label])
        cold = [
            measure(RepoCache(root / f"cold-{label}-{n}"), url, cfg, client, refresh=True)
            for n in range(max(2, rounds // 2))
        ]
        warm_cache = RepoCache(root / f"warm-{label}")
        warm_cache.mirror(url)
        new_commit = []
        for n in range(rounds):
            commit_change(origin, f"{label} change {n}")
            new_commit.append(measure(warm_cache, url, cfg, client, refresh=True))
        warm = [measure(warm_cache, url, cfg, client, refresh=False) for _ in range(rounds)]
        rows += [
            ("cold", label, cold),
            ("warm, new commit", label, new_commit),
            ("warm", label, warm),
        ]
    client.close()
    return raw, rows, config.image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agents-bench-") as tmp:
        raw, rows, image = measure_all(Path(tmp), args.files, args.rounds)
    print(table(raw, rows, image, args.files, args.rounds))
    return 0


def table(raw: list[float], rows: list[Row], image: str, files: int, rounds: int) -> str:
    """Medians; each ratio is the median of per-sample ratios to the raw run just before."""
    lines = [
        f"{files} files, median of {rounds} rounds (cold: {max(2, rounds // 2)}), "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        "",
        "| case | workspace | ready: start() to first exec | ready / raw "
        "| end to end (with cache work) | end to end / raw |",
        "|---|---|---|---|---|---|",
        f"| raw: `docker run --rm --network none {image} true` | "
        f"| {statistics.median(raw):.2f} s | 1.0 | | |",
    ]
    for case, label, samples in rows:
        ready = statistics.median(s.ready for s in samples)
        total = statistics.median(s.total for s in samples)
        ready_ratio = statistics.median(s.ready / s.raw for s in samples)
        total_ratio = statistics.median(s.total / s.raw for s in samples)
        lines.append(
            f"| {case} | {label} | {ready:.2f} s | {ready_ratio:.1f} "
            f"| {total:.2f} s | {total_ratio:.1f} |"
        )
    return "\n".join(lines)


def run(root: Path, files: int, rounds: int) -> Result:
    """The figures for ``python -m bench``: the default (tmpfs) workspace, end to end."""
    raw, rows, image = measure_all(root, files, rounds, workspaces=("tmpfs",))
    figures = []
    for case, _label, samples in rows:
        warm = case == "warm"
        figures.append(
            Figure(
                name=f"sandbox ready, {case}",
                unit="s",
                samples=[s.total for s in samples],
                how=f"{files}-file repository, default tmpfs workspace, Docker; "
                + {
                    "cold": "mirror clone + workspace archive + `start()` + first exec",
                    "warm, new commit": "mirror fetch + archive + `start()` + first exec",
                    "warm": "archive cached: `start()` + first exec",
                }[case],
                target=Target("ratio", 2.0, "warm ≤ 2x baseline") if warm else None,
                baseline=[s.raw for s in samples],
                baseline_label=f"`docker run --rm --network none {image} true`, "
                "right before each sample",
                paired_ratios=[s.total / s.raw for s in samples],
                decimals=2,
            )
        )
    ops = file_ops(root, repeat=max(3, rounds * 4))
    lines = [f"| `{name}` | {statistics.median(v) * 1000:.0f} ms |" for name, v in ops.items()]
    details = (
        table(raw, rows, image, files, rounds)
        + "\n\nOne call of each sandbox operation the agent's tools use, in a started warm "
        "sandbox (median; each goes through the Docker API, and a file operation first "
        "resolves the path one component at a time):\n\n| operation | median |\n|---|---|\n"
        + "\n".join(lines)
    )
    return Result(figures, details=details)


def file_ops(root: Path, repeat: int) -> dict[str, list[float]]:
    """Seconds per call of ``exec``, ``read_file`` and ``write_file`` in a warm sandbox."""
    client = connect()
    workspace = RepoCache(root / "warm-tmpfs").workspace(str(root / "origin"), "HEAD")
    sandbox = DockerSandbox("bench-ops", SandboxConfig(), workspace=workspace, client=client)
    path = "pkg00/mod0/file00000.py"
    calls: dict[str, Callable[[], object]] = {
        "exec('true')": lambda: sandbox.exec("true"),
        f"read_file('{path}')": lambda: sandbox.read_file(path),
        f"write_file('{path}')": lambda: sandbox.write_file(path, b"x = 1\n"),
    }
    times: dict[str, list[float]] = {name: [] for name in calls}
    try:
        sandbox.start()
        for _ in range(repeat):
            for name, call in calls.items():
                started = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - started)
    finally:
        sandbox.close()
        client.close()
    return times


if __name__ == "__main__":
    sys.exit(main())
