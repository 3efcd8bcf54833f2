"""A run whose setup has network, on a real engine through the real proxy: setup
reaches the allowed mirror (a local stand-in under its name), the run records where it
went and what was denied, the thread says so, and the checks run offline. And
docs/agents-yml.md's Python, Node, Go and Make examples, as written, against fixtures
that need their setup, with PyPI, the npm registry and the Go module proxy stood in for
by local servers of real packages under their names (tests/sandboxes/package_index.py)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import yaml
from docker.models.networks import Network

from bot.reporter import milestone
from jobs import decisions
from jobs.blueprint.wiring import sandbox_factory
from jobs.queue import RunQueue
from process import allowlist
from runs.events import SetupEgress
from runs.record import RunStatus
from sandboxes.config import EgressConfig, SandboxConfig
from sandboxes.egress_proxy import EgressProxy
from tests.blueprint.conftest import ROOT, SAMPLE, Harness
from tests.blueprint.helpers import copy_sample, finish, verdict, write
from tests.blueprint.test_factory import plan_reply
from tests.ops.test_docs_walk_examples import sections
from tests.sandboxes import package_index
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


#: What the mirror's stand-in serves: the one file the setup fetches.
MIRROR_STAND_IN = {RELEASE.removeprefix(f"{ALLOWED}/"): b"Origin: a stand-in for Debian\n"}


@dataclass(frozen=True)
class Engine:
    client: docker.DockerClient
    egress: EgressConfig
    image: str
    outside: Network


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A proxy of this test's own, reaching out from a documentation-range network
    (where a registry's stand-in can sit)."""
    client = docker.from_env()
    cache = tmp_path / "image-cache"
    name = f"agents-test-egress-flow-out-{os.getpid()}"
    with package_index.outside_network(client, name) as outside:
        config = EgressConfig(
            proxy=f"agents-test-egress-flow-{os.getpid()}",
            image=built_image(client, "egress", cache),
            network=name,
            subnets="10.215.0.0/16",
        )
        image = built_image(client, "sandbox", cache)
        try:
            yield Engine(client, config, image, outside)
        finally:
            found = EgressProxy(client, config).find()
            if found is not None:
                found.remove(force=True)
    client.close()


def test_setup_egress_is_recorded_and_said_in_the_thread(
    harness: Harness, tmp_path: Path, engine: Engine
) -> None:
    egress, image = engine.egress, engine.image
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
    # Debian's mirror is stood in for by a local server under its name (the real one
    # answers 503 now and then): the proxy resolves it on its outside network.
    with package_index.serve(
        engine.client, engine.image, engine.outside, (ALLOWED,), MIRROR_STAND_IN
    ):
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
    [result] = final.artifacts.check_reports[-1].results
    assert result.exit_code == 0  # the checks found no network


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


#: PyPI's names; on the test's outside network they are the local index's.
PYPI_NAMES = ("pypi.org", "files.pythonhosted.org")


def pypi_wheels(target: Path) -> list[Path]:
    """Real wheels of what the fixture's setup installs (its build backend and its
    test extra), for the sandbox's Python and platform, fetched here on the host."""
    machine = platform.machine()
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
            "-d", str(target), "--only-binary", ":all:", "--implementation", "cp",
            "--python-version", "3.11", "--abi", "cp311", "--platform", "any",
            "--platform", f"manylinux2014_{machine}", "--platform", f"manylinux_2_17_{machine}",
            "setuptools", "pytest", "ruff",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return sorted(target.glob("*.whl"))


def with_local_pypi(block: str) -> str:
    """The documented block with pip pointed at PyPI's names over plain HTTP (the
    local index serves no TLS); nothing else changes."""
    config = yaml.safe_load(block)
    environment = config.setdefault("environment", {})
    environment["env"] = {
        "PIP_INDEX_URL": f"http://{PYPI_NAMES[0]}/simple",
        "PIP_TRUSTED_HOST": " ".join(PYPI_NAMES),
    }
    return str(yaml.safe_dump(config, sort_keys=False))


def test_the_documented_python_example_passes_against_its_fixture(
    harness: Harness, tmp_path: Path, engine: Engine
) -> None:
    """docs/agents-yml.md's Python block on a package that needs its setup: setuptools,
    pytest and ruff come through the egress proxy, within the example's own allow-list,
    from a local index of real wheels answering to PyPI's names."""
    text = (ROOT / "docs" / "agents-yml.md").read_text()
    [block] = sections(text)["Python"]
    files = {**PYTHON_FIXTURE, ".agents.yml": with_local_pypi(block)}
    source = copy_sample(SAMPLE, tmp_path / "src", files)
    harness.add_repo("acme/python", source)
    harness.deps.sandboxes = sandbox_factory("docker", engine.egress)
    harness.configure(
        sandbox_backend="docker",
        sandbox=SandboxConfig(image=engine.image, allow=allowlist.DEFAULT_ALLOW),
    )
    wheels = pypi_wheels(tmp_path / "wheels")
    tree = package_index.simple_tree(wheels, files_host=PYPI_NAMES[1])
    harness.script(
        [
            plan_reply(1, ["`retrying.version.__version__` is 0.1.0"]),
            write("retrying/version.py", '__version__ = "0.1.0"\n'),
            finish("Added __version__."),
            verdict("approve", "Fine."),
        ]
    )
    with package_index.serve(engine.client, engine.image, engine.outside, PYPI_NAMES, tree):
        run = harness.create("add a version module", repo="acme/python")
        # `plan: always`: the run plans, after setup, and waits for the plan's approval.
        planned = harness.run(run.id)
        assert planned.status is RunStatus.AWAITING_PLAN, planned.error
        queue = RunQueue(harness.connection, harness.store, name="q")
        approved = decisions.approve_plan(queue, run.id, "U1", approvers=[])
        assert approved.done, approved.text
        final = harness.run(run.id)

    assert final.error is None, final.error
    assert final.artifacts.plan_approved == 1
    results = final.artifacts.check_reports[-1].results
    assert [(r.name, r.exit_code, r.not_run) for r in results] == [
        ("unit tests", 0, None),
        ("ruff check", 0, None),
    ], [r.output_tail for r in results]
    assert results[0].tests > 0
    report = final.artifacts.egress
    assert report is not None
    assert report.reached == sorted(PYPI_NAMES)
    assert report.denied == []


def add_example_repo(
    harness: Harness, engine: Engine, repo: str, files: dict[str, str], image: str
) -> None:
    """A documented example's fixture, published as ``repo``, and the harness set to run
    it on the real engine through this test's proxy, in ``image`` (the example's)."""
    source = harness.root / repo.replace("/", "-")
    for name, content in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(content)
    harness.add_repo(repo, source)
    harness.deps.sandboxes = sandbox_factory("docker", engine.egress)
    harness.configure(
        sandbox_backend="docker",
        sandbox=SandboxConfig(image=engine.image, allow=allowlist.DEFAULT_ALLOW),
        allowed_images=[image],
    )


#: A module the fixture requires, served by a stand-in for the Go module proxy.
MATHX = {
    "go.mod": "module example.test/mathx\n\ngo 1.19\n",
    "mathx.go": (
        "// Package mathx has small integer helpers.\npackage mathx\n\n"
        "// Clamp returns v within [lo, hi].\nfunc Clamp(v, lo, hi int) int {\n"
        "\tif v < lo {\n\t\treturn lo\n\t}\n\tif v > hi {\n\t\treturn hi\n\t}\n\treturn v\n}\n"
    ),
}
GO_FIXTURE = {
    "go.mod": "module example.test/retry\n\ngo 1.19\n\nrequire example.test/mathx v1.0.0\n",
    "retry.go": (
        "// Package retry calls a function until it succeeds.\npackage retry\n\n"
        'import "example.test/mathx"\n\n'
        "// Attempts is how many times Do tries: at least once, at most ten.\n"
        "func Attempts(n int) int { return mathx.Clamp(n, 1, 10) }\n\n"
        "// Do calls fn up to Attempts(n) times and returns its last error.\n"
        "func Do(n int, fn func() error) error {\n\tvar err error\n"
        "\tfor i := 0; i < Attempts(n); i++ {\n"
        "\t\tif err = fn(); err == nil {\n\t\t\treturn nil\n\t\t}\n\t}\n\treturn err\n}\n"
    ),
    "retry_test.go": (
        'package retry\n\nimport (\n\t"errors"\n\t"testing"\n)\n\n'
        "func TestDoRetriesUntilSuccess(t *testing.T) {\n\tcalls := 0\n"
        "\terr := Do(5, func() error {\n\t\tcalls++\n\t\tif calls < 3 {\n"
        '\t\t\treturn errors.New("not yet")\n\t\t}\n\t\treturn nil\n\t})\n'
        "\tif err != nil || calls != 3 {\n"
        '\t\tt.Fatalf("calls=%d err=%v", calls, err)\n\t}\n}\n\n'
        "func TestAttemptsAreClamped(t *testing.T) {\n"
        "\tif Attempts(0) != 1 || Attempts(99) != 10 {\n"
        '\t\tt.Fatal("not clamped")\n\t}\n}\n'
    ),
}
GO_PROXY = "proxy.golang.org"


def test_the_documented_go_example_passes_against_its_fixture(
    harness: Harness, tmp_path: Path, engine: Engine
) -> None:
    """docs/agents-yml.md's Go block on a module that needs its setup: `go mod
    download` fetches the module it requires through the egress proxy, from a stand-in
    for the Go module proxy under its own name (on the default allow-list); the build,
    vet and race-enabled tests then run offline from the module cache."""
    image = built_image(engine.client, "go", tmp_path / "image-cache")
    text = (ROOT / "docs" / "agents-yml.md").read_text()
    [block] = sections(text)["Go"]
    config = yaml.safe_load(block)
    # The image `agents sandbox build go` makes (AGENTS_TEST_GO_IMAGE's, when set).
    config["image"] = image
    config.setdefault("environment", {})["env"] = {
        # The stand-in speaks plain HTTP and has no checksum database.
        "GOPROXY": f"http://{GO_PROXY}",
        "GONOSUMDB": "example.test",
    }
    tree, go_sum = package_index.go_module("example.test/mathx", "v1.0.0", MATHX)
    files = {**GO_FIXTURE, "go.sum": go_sum, ".agents.yml": yaml.safe_dump(config)}
    add_example_repo(harness, engine, "acme/go", files, image)
    harness.script(
        [
            write(
                "version.go",
                'package retry\n\n// Version of the package.\nconst Version = "0.1.0"\n',
            ),
            finish("Added Version."),
            verdict("approve", "Fine."),
        ]
    )
    with package_index.serve(engine.client, engine.image, engine.outside, (GO_PROXY,), tree):
        final = harness.run(harness.create("add a version constant", repo="acme/go").id)

    assert final.error is None, final.error
    results = final.artifacts.check_reports[-1].results
    assert [(r.name, r.exit_code, r.not_run) for r in results] == [
        ("go vet", 0, None),
        ("go test", 0, None),
    ], [r.output_tail for r in results]
    assert "ok  \texample.test/retry" in results[1].output_tail
    report = final.artifacts.egress
    assert report is not None
    assert report.reached == [GO_PROXY]
    assert report.denied == []


#: The Node fixture: JavaScript type-checked by TypeScript, tested by jest, linted by
#: eslint, with exact versions resolved from what npm had before NODE_BEFORE.
NODE_BEFORE = "2025-01-01"
NODE_PACKAGE = {
    "name": "retrying",
    "version": "0.1.0",
    "private": True,
    "scripts": {"test": "jest", "lint": "eslint ."},
    "devDependencies": {
        "@eslint/js": "9.16.0",
        "eslint": "9.16.0",
        "jest": "29.7.0",
        "jest-junit": "16.0.0",
        "typescript": "5.7.2",
    },
    "jest-junit": {"outputDirectory": "/tmp/agents-checks"},
}
NODE_FIXTURE = {
    ".gitignore": "node_modules/\n",
    "tsconfig.json": (
        '{"compilerOptions": {"allowJs": true, "checkJs": true, "noEmit": true, '
        '"strict": true, "module": "commonjs", "target": "es2022", "types": []},\n'
        ' "include": ["src/**/*.js"], "exclude": ["src/**/*.test.js"]}\n'
    ),
    "eslint.config.js": (
        '"use strict";\n\nconst js = require("@eslint/js");\n\nmodule.exports = [\n'
        "  js.configs.recommended,\n  {\n    languageOptions: {\n"
        '      sourceType: "commonjs",\n'
        '      globals: { require: "readonly", module: "writable", test: "readonly", '
        'expect: "readonly" },\n    },\n  },\n];\n'
    ),
    "src/retry.js": (
        '"use strict";\n\n/**\n * How many times `retry` tries: at least once, at most ten.\n'
        " * @param {number} asked\n * @returns {number}\n */\n"
        "function attempts(asked) {\n  return Math.min(10, Math.max(1, asked));\n}\n\n"
        "/**\n * Calls `fn` until it returns without throwing.\n * @template T\n"
        " * @param {number} times\n * @param {() => T} fn\n * @returns {T}\n */\n"
        "function retry(times, fn) {\n  let last;\n"
        "  for (let i = 0; i < attempts(times); i++) {\n    try {\n      return fn();\n"
        "    } catch (error) {\n      last = error;\n    }\n  }\n  throw last;\n}\n\n"
        "module.exports = { attempts, retry };\n"
    ),
    "src/retry.test.js": (
        '"use strict";\n\nconst { attempts, retry } = require("./retry");\n\n'
        'test("attempts are clamped", () => {\n  expect(attempts(0)).toBe(1);\n'
        "  expect(attempts(99)).toBe(10);\n});\n\n"
        'test("retry calls until success", () => {\n  let calls = 0;\n'
        "  const value = retry(5, () => {\n    calls += 1;\n"
        '    if (calls < 3) throw new Error("not yet");\n    return "done";\n  });\n'
        '  expect([value, calls]).toEqual(["done", 3]);\n});\n'
    ),
}
NPM = "registry.npmjs.org"


def test_the_documented_node_example_passes_against_its_fixture(
    harness: Harness, tmp_path: Path, engine: Engine
) -> None:
    """docs/agents-yml.md's Node block on a package that needs its setup: `npm ci`
    installs the lock's real jest, eslint and TypeScript (some 330 packages) through
    the egress proxy from a stand-in for the npm registry under its own name; the
    agent's new file is linted as it is written, and jest (with its JUnit report),
    eslint and tsc then run offline in the Node image."""
    image = built_image(engine.client, "node", tmp_path / "image-cache")
    text = (ROOT / "docs" / "agents-yml.md").read_text()
    [block] = sections(text)["Node"]
    config = yaml.safe_load(block)
    config["image"] = image  # the image `agents sandbox build node` makes
    # The stand-in speaks plain HTTP under the registry's name.
    config.setdefault("environment", {})["env"] = {"NPM_CONFIG_REGISTRY": f"http://{NPM}/"}
    package_json = json.dumps(NODE_PACKAGE, indent=2) + "\n"
    lock = package_index.npm_lock(package_json, NODE_BEFORE)
    files = {
        **NODE_FIXTURE,
        "package.json": package_json,
        "package-lock.json": lock,
        ".agents.yml": yaml.safe_dump(config, sort_keys=False),
    }
    add_example_repo(harness, engine, "acme/node", files, image)
    harness.script(
        [
            write(
                "src/version.js",
                '"use strict";\n\nmodule.exports = { version: "0.1.0" };\n',
            ),
            finish("Added version."),
            verdict("approve", "Fine."),
        ]
    )
    tree = package_index.npm_registry(lock, NPM)
    with package_index.serve(engine.client, engine.image, engine.outside, (NPM,), tree):
        final = harness.run(harness.create("add a version module", repo="acme/node").id)

    assert final.error is None, final.error
    results = final.artifacts.check_reports[-1].results
    assert [(r.name, r.exit_code, r.not_run) for r in results] == [
        ("unit tests", 0, None),
        ("npm run lint", 0, None),
        ("npx tsc", 0, None),
    ], [r.output_tail for r in results]
    assert results[0].tests == 2  # from jest-junit's report
    assert final.artifacts.on_edit_runs == 1  # eslint on the agent's src/version.js
    report = final.artifacts.egress
    assert report is not None
    assert report.reached == [NPM]
    assert report.denied == []


MAKE_FIXTURE = {
    ".gitignore": "build/\n",
    "Makefile": (
        "CFLAGS ?= -O2 -Wall -Wextra -Werror\n"
        "SRC := $(filter-out test_%.c,$(wildcard *.c))\n"
        "OBJ := $(SRC:%.c=build/%.o)\n\n"
        "all: build/libretry.a\n\n"
        "build/%.o: %.c retry.h\n\t@mkdir -p build\n\t$(CC) $(CFLAGS) -c $< -o $@\n\n"
        "build/libretry.a: $(OBJ)\n\t$(AR) rcs $@ $^\n\n"
        "build/test_retry: test_retry.c build/libretry.a\n"
        "\t$(CC) $(CFLAGS) $< -Lbuild -lretry -o $@\n\n"
        "test: build/test_retry\n\t./build/test_retry\n\n"
        ".PHONY: all test\n"
    ),
    "retry.h": "int retry_attempts(int asked);\n",
    "retry.c": (
        '#include "retry.h"\n\n'
        "int retry_attempts(int asked) {\n"
        "    return asked < 1 ? 1 : asked > 10 ? 10 : asked;\n}\n"
    ),
    "test_retry.c": (
        '#include <stdio.h>\n#include "retry.h"\n\n'
        "int main(void) {\n    int failed = 0;\n"
        "    failed += retry_attempts(0) != 1;\n    failed += retry_attempts(99) != 10;\n"
        "    failed += retry_attempts(3) != 3;\n"
        '    printf("%d passed, %d failed\\n", 3 - failed, failed);\n'
        "    return failed != 0;\n}\n"
    ),
}


def test_the_documented_make_example_passes_against_its_fixture(
    harness: Harness, tmp_path: Path, engine: Engine
) -> None:
    """docs/agents-yml.md's Make block on a C library in the default image: setup builds
    it, the agent's new file is checked by the on_edit compiler as it is written, and
    the checks rebuild and run the tests, offline."""
    text = (ROOT / "docs" / "agents-yml.md").read_text()
    [block] = sections(text)["Make"]
    source = tmp_path / "src"
    source.mkdir()
    for name, content in {**MAKE_FIXTURE, ".agents.yml": block}.items():
        (source / name).write_text(content)
    harness.add_repo("acme/make", source)
    harness.deps.sandboxes = sandbox_factory("docker", engine.egress)
    harness.configure(sandbox_backend="docker", sandbox=SandboxConfig(image=engine.image))
    harness.script(
        [
            write("version.c", 'const char *retry_version(void) { return "0.1.0"; }\n'),
            finish("Added retry_version."),
            verdict("approve", "Fine."),
        ]
    )
    final = harness.run(harness.create("add a version function", repo="acme/make").id)

    assert final.error is None, final.error
    results = final.artifacts.check_reports[-1].results
    assert [(r.name, r.exit_code, r.not_run) for r in results] == [("unit tests", 0, None)], [
        r.output_tail for r in results
    ]
    tail = results[0].output_tail
    assert "build/version.o" in tail  # the change was built in...
    assert "3 passed, 0 failed" in tail  # ...and the tests ran
    assert final.artifacts.egress is None  # no network was asked for
