"""The machine a benchmark ran on, for the report's header."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import redis


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _docker() -> str:
    try:
        out = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}} ({{.Server.Os}})"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "not available"
    return out.stdout.strip()


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def describe(conn: redis.Redis) -> dict[str, str]:
    info = conn.info("server")
    return {
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": _memory(),
        "kernel": f"{platform.system()} {platform.release()}",
        "Docker": _docker(),
        "Redis": str(info.get("redis_version", "unknown")),
        "Python": platform.python_version(),
        "load average (1/5/15 min) at start": load_average(),
    }
