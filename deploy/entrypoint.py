"""The image's entrypoint: join the Docker socket's group, drop to `agents`, run the command.

The socket's group id differs from host to host (and is not the image's `docker` group),
so it is read off the mounted socket when the container starts instead of being baked
into the image or asked for in `.env`. Only the worker has the socket; the bot and the
dashboard simply drop to `agents`. Started as another user (`docker run --user`), it
runs the command as that user unchanged.
"""

from __future__ import annotations

import os
import pwd
import sys

SOCKET = "/var/run/docker.sock"
USER = "agents"


def main(argv: list[str]) -> None:
    command = argv[1:] or ["agents", "--help"]
    if os.getuid() == 0:
        user = pwd.getpwnam(USER)
        groups = {user.pw_gid}
        if os.path.exists(SOCKET):
            groups.add(os.stat(SOCKET).st_gid)
        os.setgroups(sorted(groups))
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
        os.environ["HOME"] = user.pw_dir
        os.environ["USER"] = USER
        os.chdir(user.pw_dir)
    os.execvp(command[0], command)  # noqa: S606 - the container's command, as given


if __name__ == "__main__":
    main(sys.argv)
