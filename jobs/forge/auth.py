"""Credentials for git transport, handed to one git process at a time, and redaction.

The token reaches git as configuration in that process's environment only
(``GIT_CONFIG_COUNT`` / ``GIT_CONFIG_KEY_n`` / ``GIT_CONFIG_VALUE_n``, git >= 2.31): an
``http.<url>.extraHeader`` scoped to the forge's host. Nothing is written to
``.git/config``, to a credential store, or to the command line (which ``ps`` and
GitPython's debug log would show).
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

#: Environment variables that could make git log request headers or prompt for input.
_DROPPED_ENV = re.compile(r"^(GIT_TRACE.*|GIT_CURL_VERBOSE|GIT_CONFIG_(COUNT|KEY_\d+|VALUE_\d+))$")

REDACTED = "***"


class GitCredentials:
    """An HTTP ``Authorization`` header for git, scoped to one URL prefix.

    GitHub accepts ``Basic base64("x-access-token:<token>")`` for installation tokens and
    personal access tokens alike.
    """

    __slots__ = ("_header", "_secrets", "url_prefix")

    def __init__(self, url: str, token: str, username: str = "x-access-token") -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"credentials apply to http(s) remotes, not {parts.scheme!r}")
        self.url_prefix = f"{parts.scheme}://{parts.netloc}/"
        basic = base64.b64encode(f"{username}:{token}".encode()).decode()
        self._header = f"Authorization: Basic {basic}"
        self._secrets = (token, basic)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every form of the credential that must never appear in output."""
        return self._secrets

    def config(self) -> list[tuple[str, str]]:
        """Configuration for exactly one git process (see :func:`git_env`)."""
        return [
            (f"http.{self.url_prefix}.extraHeader", self._header),
            # An empty helper resets the list: no credential helper may store anything.
            ("credential.helper", ""),
        ]

    def __repr__(self) -> str:
        return f"GitCredentials(url_prefix={self.url_prefix!r}, header={REDACTED!r})"


def git_env(credentials: GitCredentials | None = None) -> dict[str, str]:
    """The environment for one git call: the worker's, minus tracing, plus credentials.

    Configuration goes in as ``GIT_CONFIG_KEY_n`` / ``GIT_CONFIG_VALUE_n`` pairs, which
    git reads for this process only.

    Prompts are disabled so a missing or wrong credential fails at once instead of waiting
    for a terminal that is not there.
    """
    env = {k: v for k, v in os.environ.items() if not _DROPPED_ENV.match(k)}
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "GCM_INTERACTIVE": "never",
            "LC_ALL": "C",
        }
    )
    # No hooks: a worker's global config or init template must not run code on push.
    config = [("core.hooksPath", "/dev/null")]
    if credentials is not None:
        config.extend(credentials.config())
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def mask_tokens(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (and any ``user:password@`` in URLs) replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return re.sub(r"(?<=://)[^/@\s]+@", f"{REDACTED}@", text)
