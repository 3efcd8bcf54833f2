"""Read uv.lock with the standard library, for the places that have no uv yet.

`make install` and the Dockerfile use it to install uv itself from the lock (by hash),
and `deploy/build-wheels.sh` to turn an exported requirements file into a download list
for another interpreter. Everything else reads the lock through uv.

    python3 scripts/lockfile.py pin uv            # uv==X --hash=sha256:... (every file)
    python3 scripts/lockfile.py unmarked < req    # the same requirements, markers dropped
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


def unmarked(requirements: str) -> str:
    """The requirements with their environment markers removed.

    A download for another interpreter (the images' Debian Python is 3.11.2, the host's
    may be newer) must not evaluate markers against the host: `async-timeout` is needed
    below 3.11.3 only. Downloading every locked file is a harmless superset; pip evaluates
    the markers again where it installs.
    """
    return re.sub(r" ; [^\\\n]*?( \\)?$", r"\1", requirements, flags=re.MULTILINE)


def main(argv: list[str]) -> None:
    if argv[:1] == ["pin"] and len(argv) == 2:
        print(pin(argv[1]))
    elif argv == ["unmarked"]:
        sys.stdout.write(unmarked(sys.stdin.read()))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
