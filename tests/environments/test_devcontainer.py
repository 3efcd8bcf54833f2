"""devcontainer.json and Dockerfiles, read as hostile input: JSON with comments parsed
safely, within limits, into the subset the sandbox takes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.environments.devcontainer import (
    MAX_BYTES,
    parse_devcontainer,
    strip_jsonc,
    validated,
    with_devcontainer,
)
from jobs.environments.dockerfile import allowed_bases, base_images, refuse_unless_allowed
from jobs.repo_config import RepoConfig, parse_repo_config
from process.exceptions import RepoConfigError
from tests.blueprint.conftest import ROOT

EXAMPLE = ROOT / "examples" / "devcontainer" / ".devcontainer"


def test_the_example_reads_into_setup_update_env_and_a_dockerfile() -> None:
    dev = parse_devcontainer((EXAMPLE / "devcontainer.json").read_text())
    assert dev.dockerfile == ".devcontainer/Dockerfile"
    assert dev.context == "."
    assert dev.build_args == {"TOOL_GREETING": "tool-ok"}
    assert dev.env == {"PYTHONPATH": "/workspace/.deps"}
    assert dev.post_create == ["sh -c 'echo post-create >> /home/agent/setup-marker.log'"]
    assert dev.ignored == ["features", "forwardPorts", "remoteUser"]
    config = validated(with_devcontainer(RepoConfig(), dev), dev.path)
    assert config.setup == [*dev.on_create, *dev.update_content, *dev.post_create]
    assert config.environment.update == dev.update_content
    assert config.environment.origin == "devcontainer"


def test_comments_and_trailing_commas_go_but_strings_keep_them() -> None:
    text = '{\n // a\n "a": "x // y /* z */", /* b */ "b": [1, 2,],\n}'
    assert json.loads(strip_jsonc(text)) == {"a": "x // y /* z */", "b": [1, 2]}
    assert json.loads(strip_jsonc('{"a": "q\\"//"}')) == {"a": 'q"//'}


def test_an_object_of_commands_runs_them_in_order_and_an_image_is_taken() -> None:
    dev = parse_devcontainer(
        '{"image": "agents-sandbox:latest", "onCreateCommand": {"one": "a", "two": ["b", "c d"]}}'
    )
    assert dev.on_create == ["a", "b 'c d'"]
    config = with_devcontainer(RepoConfig(), dev)
    assert config.image == "agents-sandbox:latest"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "must be a JSON object"),
        ('{"image": 3}', "`image` must be a non-empty string"),
        ('{"onCreateCommand": 3}', "must be a string, an array or an object"),
        ('{"build": {"dockerfile": "../../etc/Dockerfile"}}', "leads outside the repository"),
        ('{"containerEnv": {"A B": "x"}}', "not a variable"),
        ('{"a": 1', "not valid JSON at line 1"),
        ("[" * 50 + "]" * 50, "nests deeper than 20 levels"),
        ('{"x": "' + "a" * MAX_BYTES + '"}', "over 64 KiB"),
    ],
)
def test_a_bad_devcontainer_is_refused_with_its_reason(text: str, message: str) -> None:
    with pytest.raises(RepoConfigError, match=message.replace("[", r"\[")):
        parse_devcontainer(text)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.text(alphabet='{}[],:"/*\\ \nabc1', max_size=200))
def test_any_text_parses_or_is_refused_with_a_message(text: str) -> None:
    outcome = ""
    try:
        parse_devcontainer(text)
    except RepoConfigError as err:
        outcome = str(err)
    assert outcome == "" or outcome.startswith(".devcontainer/devcontainer.json")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3)
    ),
    max_leaves=20,
)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(JSON_VALUES)
def test_plain_json_is_unchanged_by_the_comment_stripper(value: object) -> None:
    text = json.dumps(value)
    assert json.loads(strip_jsonc(text)) == value


def test_from_lines_are_read_with_arg_defaults_and_stages() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "ARG BASE=agents-sandbox:latest\n"
        "FROM --platform=linux/amd64 ${BASE} AS build\n"
        "RUN make \\\n    all\n"
        "FROM build\n"
        "FROM scratch\n"
    )
    assert base_images(text, {}, "Dockerfile") == ["agents-sandbox:latest"]
    assert base_images(text, {"BASE": "python:3.12"}, "Dockerfile") == ["python:3.12"]


def test_a_dockerfile_may_start_only_from_an_allowed_image() -> None:
    allowed = allowed_bases("agents-sandbox:latest", parse_repo_config("image: acme/ci:1"))
    assert allowed == {"agents-sandbox:latest", "acme/ci:1"}
    refuse_unless_allowed(["acme/ci:1"], allowed, "Dockerfile")
    with pytest.raises(RepoConfigError, match="`FROM evil/miner:latest` is not an image"):
        refuse_unless_allowed(["evil/miner:latest"], allowed, "Dockerfile")
    with pytest.raises(RepoConfigError, match=r"uses \$TAG, which has no default"):
        base_images("ARG TAG\nFROM python:$TAG\n", {}, "Dockerfile")
    with pytest.raises(RepoConfigError, match="has no FROM line"):
        base_images("RUN true\n", {}, "Dockerfile")
