"""Environments and setup egress, real parts (engine, proxy, Redis): wherever setup
commands run for an environment (its build, or setup again because the change touched
a dependency input), they reach the outside only through the egress proxy, the run
records where they went, and the sandbox is offline again before the checks."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from runs.events import EnvironmentNoted, SetupEgress
from runs.record import RunStatus
from sandboxes.config import EgressConfig
from sandboxes.egress_proxy import EgressProxy
from tests.blueprint.conftest import SAMPLE
from tests.blueprint.helpers import copy_sample, finish, verdict, write
from tests.blueprint.test_setup_egress_docker import MIRROR_STAND_IN
from tests.environments.conftest import REPO, EnvHarness
from tests.sandboxes import package_index
from tests.sandboxes.test_egress_docker import ALLOWED, RELEASE, built_image

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow]

#: Setup reaches the mirror (allowed), tries PyPI (the repository's list leaves it
#: out), and, once requirements.txt names "more", example.org (never allowed).
AGENTS_YML = f"""\
network: {{setup: true, allow: [{ALLOWED}]}}
setup:
  - curl -fsS -o /dev/null http://{RELEASE}
  - curl -sS -m 10 -o /dev/null https://pypi.org/simple/ || echo pypi denied as expected
  - >-
    if grep -q more requirements.txt; then
    curl -sS -m 10 -o /dev/null https://example.org/ || echo example.org denied; fi
checks:
  - name: offline
    run: "! curl -sS -m 4 -o /dev/null http://{RELEASE}"
"""


@pytest.fixture
def egress(env_harness: EnvHarness, tmp_path: Path) -> Iterator[EgressConfig]:
    """A proxy of this test's own, which the harness's engine gives its sandboxes,
    reaching out from a documentation-range network where a local stand-in for
    Debian's mirror answers under its name (the real one answers 503 now and then)."""
    client = env_harness.engine.client
    cache = tmp_path / "image-cache"
    name = f"agents-test-egress-env-out-{os.getpid()}"
    with package_index.outside_network(client, name) as outside:
        config = EgressConfig(
            proxy=f"agents-test-egress-env-{os.getpid()}",
            image=built_image(client, "egress", cache),
            network=name,
            subnets="10.216.0.0/16",
        )
        env_harness.engine.egress = config
        sandbox = env_harness.deps.config.sandbox.with_changes(allow=(ALLOWED, "pypi.org"))
        env_harness.deps.config = env_harness.deps.config.model_copy(update={"sandbox": sandbox})
        image = built_image(client, "sandbox", cache)
        try:
            with package_index.serve(client, image, outside, (ALLOWED,), MIRROR_STAND_IN):
                yield config
        finally:
            found = EgressProxy(client, config).find()
            if found is not None:
                found.remove(force=True)


def _repo(harness: EnvHarness) -> None:
    files = {
        ".agents.yml": AGENTS_YML,
        "requirements.txt": f"# nonce {secrets.token_hex(8)}\n",
    }
    harness.forge.create_repo(REPO, source=copy_sample(SAMPLE, harness.root / "src", files))


def _said(harness: EnvHarness, run_id: int) -> list[str]:
    return [e.text for e in harness.store.events(run_id) if isinstance(e, SetupEgress)]


def test_the_environment_build_goes_out_through_the_proxy_and_the_run_records_it(
    env_harness: EnvHarness, egress: EgressConfig
) -> None:
    _repo(env_harness)
    env_harness.models.by_iteration = {
        1: [
            write("retrying/version.py", '__version__ = "0.1.0"\n'),
            finish("Added __version__."),
            verdict("approve", "Fine."),
        ]
    }
    run = env_harness.create("add a version module")
    final = env_harness.run(run.id)

    assert final.status is RunStatus.AWAITING_DECISION, final.error
    env = final.artifacts.environment
    assert env is not None
    assert env.outcome == "built"
    report = final.artifacts.egress
    assert report is not None
    assert report.reached == [ALLOWED]
    assert report.denied == ["pypi.org"]
    assert _said(env_harness, run.id) == ["setup reached 1 host; denied pypi.org"]
    [result] = final.artifacts.check_reports[-1].results
    assert result.exit_code == 0  # the checks found no network

    # A second run reuses the environment: no setup ran, so nothing went out.
    again = env_harness.create("add a version module again")
    second = env_harness.run(again.id)
    assert second.status is RunStatus.AWAITING_DECISION, second.error
    assert second.artifacts.environment is not None
    assert second.artifacts.environment.outcome == "reused"
    assert second.artifacts.egress is None
    assert _said(env_harness, again.id) == []


def test_setup_again_for_a_changed_dependency_input_goes_through_the_proxy(
    env_harness: EnvHarness, egress: EgressConfig
) -> None:
    _repo(env_harness)
    env_harness.models.by_iteration = {
        1: [
            write("requirements.txt", "more\n"),
            finish("Named one more requirement."),
            verdict("approve", "Fine."),
            # requirements.txt brings in the security specialist (the factory's rules).
            verdict("approve", "Nothing new is fetched from outside the allow-list."),
        ]
    }
    run = env_harness.create("add a requirement")
    final = env_harness.run(run.id)

    assert final.status is RunStatus.AWAITING_DECISION, final.error
    notes = [e.text for e in env_harness.store.events(run.id) if isinstance(e, EnvironmentNoted)]
    assert any("setup ran again" in text for text in notes), notes
    report = final.artifacts.egress
    assert report is not None
    assert report.reached == [ALLOWED]
    # The build denied PyPI; setup again (with "more") was denied example.org too.
    assert report.denied == ["example.org", "pypi.org"]
    said = _said(env_harness, run.id)
    assert said[0] == "setup reached 1 host; denied pypi.org"
    assert said[-1] == "setup reached 1 host; denied example.org, pypi.org"
    # Every check result ran after setup went offline again.
    for result in final.artifacts.check_reports[-1].results:
        assert result.exit_code == 0, result
