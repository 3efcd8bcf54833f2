"""Read uv.lock with the standard library, for the places that have no uv yet.

`make install` and the Dockerfile use it to install uv itself from the lock (by hash),
and `deploy/build-wheels.sh` to turn an exported requirements file into a download list
for the images' interpreter. Everything else reads the lock through uv.

    python3 scripts/lockfile.py pin uv            # uv==X --hash=sha256:... (every file)
    python3 scripts/lockfile.py for-image < req   # the ones the images' Python takes
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

#: Read from the current directory: the repository's root, or the Dockerfile's WORKDIR.
LOCK = Path("uv.lock")


def pin(name: str, lock: Path = LOCK) -> str:
    """One hashed requirement line for `name`, as pip's hash-checking mode takes it."""
    packages = tomllib.loads(lock.read_text())["package"]
    for package in packages:
        if package["name"] == name:
            files = [*package.get("wheels", [])]
            if "sdist" in package:
                files.append(package["sdist"])
            hashes = " ".join(f"--hash={entry['hash']}" for entry in files)
            return f"{name}=={package['version']} {hashes}"
    raise SystemExit(f"{name} is not in {lock.name}; run `make lock`")


#: The interpreter every image installs into: Debian bookworm's python3.
IMAGE_PYTHON = "3.11.2"


def for_image(requirements: str, python: str = IMAGE_PYTHON) -> str:
    """The requirements whose environment markers hold in the images, markers removed.

    A download for the images must evaluate markers against their interpreter, not the
    host's: `async-timeout` is needed below 3.11.3 only, and the lock holds two numpy (and
    contourpy) versions split at 3.12, of which the images take the older. Dropping the
    markers instead would ask pip for both versions at once, which it refuses.

    `packaging` comes with the dev environment (`make install`), which runs this.
    """
    import platform

    from packaging.markers import Marker

    environment = {
        "python_version": ".".join(python.split(".")[:2]),
        "python_full_version": python,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": platform.machine(),
    }
    kept: list[str] = []
    keep = True
    for line in requirements.splitlines(keepends=True):
        if line[:1].isspace():  # a --hash or comment line continues the requirement above
            if keep:
                kept.append(line)
            continue
        match = re.match(
            r"(?P<req>[^;#\n]*?) ; (?P<marker>[^\\\n]*?)(?P<cont> \\)?$", line.rstrip("\n")
        )
        if match is None:
            keep = True
            kept.append(line)
            continue
        keep = Marker(match["marker"]).evaluate(environment)
        if keep:
            kept.append(match["req"] + (match["cont"] or "") + "\n")
    return "".join(kept)


def main(argv: list[str]) -> None:
    if argv[:1] == ["pin"] and len(argv) == 2:
        print(pin(argv[1]))
    elif argv == ["for-image"]:
        sys.stdout.write(for_image(sys.stdin.read()))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
