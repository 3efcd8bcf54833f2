"""A run whose setup has network, on a real engine through the real proxy: setup
reaches the allowed mirror, the run records where it went and what was denied, the
thread says so, and the checks run offline."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from bot.reporter import milestone
from jobs.blueprint.wiring import sandbox_factory
from process import allowlist
from runs.events import SetupEgress
from sandboxes.config import EgressConfig, SandboxConfig
from sandboxes.egress_proxy import EgressProxy
from tests.blueprint.conftest import ROOT, SAMPLE, Harness
from tests.blueprint.helpers import copy_sample, finish, verdict, write
from tests.ops.test_docs_walk_examples import sections
from tests.sandboxes.test_egress_docker import ALLOWED, RELEASE, built_image

pytestmark = pytest.mark.docker

AGENTS_YML = f"""\
network: {{setup: true, allow: [{ALLOWED}]}}
setup:
  - curl -fsS -o /dev/null http://{RELEASE}
  - curl -sS -o /dev/null https://pypi.org/simple/ || echo denied as expected
checks:
  - name: offline
    run: "! curl -sS -m 4 -o /dev/null http://{RELEASE}"
"""


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[docker.DockerClient, EgressConfig, str]]:
    client = docker.from_env()
    cache = tmp_path / "image-cache"
    config = EgressConfig(
        proxy=f"agents-test-egress-flow-{os.getpid()}",
        image=built_image(client, "egress", cache),
        network=f"agents-test-egress-flow-out-{os.getpid()}",
        subnets="10.215.0.0/16",
    )
    image = built_image(client, "sandbox", cache)
    yield client, config, image
    found = EgressProxy(client, config).find()
    if found is not None:
        found.remove(force=True)
    with contextlib.suppress(docker.errors.NotFound):
        client.networks.get(config.network).remove()
    client.close()


def test_setup_egress_is_recorded_and_said_in_the_thread(
    harness: Harness, tmp_path: Path, engine: tuple[docker.DockerClient, EgressConfig, str]
) -> None:
    _client, egress, image = engine
    source = copy_sample(SAMPLE, tmp_path / "src", {".agents.yml": AGENTS_YML})
    harness.add_repo("acme/online", source)
    harness.deps.sandboxes = sandbox_factory("docker", egress)
    # The operator allows the mirror and PyPI; the repository narrows that to the
    # mirror, so the proxy denies PyPI.
    harness.configure(
        sandbox_backend="docker",
        sandbox=SandboxConfig(image=image, allow=(ALLOWED, "pypi.org")),
        fix_rounds=0,
    )
    harness.script(
        [
            write("retrying/version.py", '__version__ = "0.1.0"\n'),
            finish("Added __version__."),
            verdict("approve", "Fine."),
        ]
    )
    final = harness.run(harness.create("add a version module", repo="acme/online").id)

    assert final.error is None, final.error
    report = final.artifacts.egress
    assert report is not None
    assert report.reached == [ALLOWED]
    assert report.denied == ["pypi.org"]
    events = [e for e in harness.store.events(final.id) if isinstance(e, SetupEgress)]
    assert events
    assert events[0].text == "setup reached 1 host; denied pypi.org"
    reply = milestone(events[0], final)
    assert reply is not None
    assert "setup reached 1 host; denied pypi.org" in reply[0]
    [result] = final.artifacts.check_reports[-1]["results"]
    assert result["exit_code"] == 0  # the checks found no network


PYTHON_FIXTURE = {
    "pyproject.toml": (
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "retrying"\nversion = "0.1"\n\n'
        '[project.optional-dependencies]\ntest = ["pytest", "ruff"]\n\n'
        '[tool.setuptools]\npackages = ["retrying"]\n\n'
        '[tool.ruff.lint]\nselect = ["E9", "F63", "F7", "F82"]\n\n'
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\naddopts = "-p no:cacheprovider"\n'
    ),
}


def test_the_documented_python_example_passes_against_its_fixture(
    harness: Harness, tmp_path: Path, engine: tuple[docker.DockerClient, EgressConfig, str]
) -> None:
    """docs/agents-yml.md's Python block, as written, on a package that needs its setup
    (pytest and ruff come from PyPI through the egress proxy)."""
    _client, egress, image = engine
    text = (ROOT / "docs" / "agents-yml.md").read_text()
    [block] = sections(text)["Python"]
    files = {**PYTHON_FIXTURE, ".agents.yml": block}
    source = copy_sample(SAMPLE, tmp_path / "src", files)
    harness.add_repo("acme/python", source)
    harness.deps.sandboxes = sandbox_factory("docker", egress)
    harness.configure(
        sandbox_backend="docker",
        sandbox=SandboxConfig(image=image, allow=allowlist.DEFAULT_ALLOW),
    )
    harness.script(
        [
            write("retrying/version.py", '__version__ = "0.1.0"\n'),
            finish("Added __version__."),
            verdict("approve", "Fine."),
        ]
    )
    final = harness.run(harness.create("add a version module", repo="acme/python").id)

    assert final.error is None, final.error
    results = final.artifacts.check_reports[-1]["results"]
    assert [(r["name"], r["exit_code"], r["not_run"]) for r in results] == [
        ("unit tests", 0, None),
        ("ruff check", 0, None),
    ], [r["output_tail"] for r in results]
    assert results[0]["tests"] > 0
    report = final.artifacts.egress
    assert report is not None
    assert report.reached == ["files.pythonhosted.org", "pypi.org"]
