"""The default image takes a normal Python setup as uid 1000, with no flags: ``python``
and ``pip`` resolve, ``pip install -e .`` and ``pip install -r requirements.txt`` work,
and a virtualenv made under ``/tmp`` runs its own interpreter (exec is allowed there)."""

from __future__ import annotations

import os

import docker
import pytest

from sandboxes.config import SandboxConfig
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.image_builder import SANDBOX_IMAGE

pytestmark = pytest.mark.docker

PYPROJECT = b"""[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "demo-setup"
version = "0.1"
"""


def test_pip_install_editable_works_as_uid_1000_with_no_flags(
    docker_client: docker.DockerClient,
) -> None:
    image = os.environ.get("AGENTS_TEST_SANDBOX_IMAGE") or SANDBOX_IMAGE
    with DockerSandbox("setup-image", SandboxConfig(image=image), client=docker_client) as box:
        box.write_file("pyproject.toml", PYPROJECT)
        box.write_file("demo_setup/__init__.py", b"VALUE = 42\n")
        box.write_file("requirements.txt", b"demo-setup @ file:///workspace\n")

        who = box.exec("id -u; command -v python; command -v pip")
        assert who.stdout.split() == [
            "1000",
            "/home/agent/.venv/bin/python",
            "/home/agent/.venv/bin/pip",
        ]

        editable = box.exec("pip install -e .", timeout=600)
        assert editable.ok, editable.stdout[-2000:] + editable.stderr[-2000:]
        imported = box.exec(
            ["python", "-c", "import demo_setup; print(demo_setup.VALUE)"], cwd="/tmp"
        )
        assert imported.stdout.strip() == "42"
        box.write_file("demo_setup/__init__.py", b"VALUE = 43\n")  # editable: the source itself
        again = box.exec(["python", "-c", "import demo_setup; print(demo_setup.VALUE)"], cwd="/tmp")
        assert again.stdout.strip() == "43"

        pinned = box.exec("pip install -r requirements.txt", timeout=600)
        assert pinned.ok, pinned.stdout[-2000:] + pinned.stderr[-2000:]

        venv = box.exec(
            "python -m venv /tmp/v && /tmp/v/bin/python -c 'import sys; print(sys.prefix)'"
        )
        assert venv.ok, venv.stderr
        assert venv.stdout.strip() == "/tmp/v"
