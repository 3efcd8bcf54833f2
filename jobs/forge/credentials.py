"""How the worker authenticates to GitHub: a static token, or a GitHub App.

With a GitHub App (``AGENTS_GITHUB_APP_ID`` and ``AGENTS_GITHUB_APP_PRIVATE_KEY``), each
job mints its own installation access token through PyGithub (``Auth.AppAuth`` signs an
RS256 JWT, ``GithubIntegration.get_access_token`` exchanges it) the first time it needs
one, and mints a fresh one when the current token is within :data:`REFRESH_MARGIN` of
its ``expires_at`` (installation tokens last an hour). RQ forks a work horse per job and
the forge builds these objects inside the job, so tokens are never shared between jobs.

The forge asks :meth:`GitHubCredentials.auth` for PyGithub's auth (which fetches the
current token on every request) and :meth:`GitHubCredentials.token` right before each
git call, so a long job never pushes with an expired token. Every token minted is added
to the log redactor and to :attr:`GitHubCredentials.secrets`, which the forge redacts
from its errors; none of it reaches a sandbox (sandboxes get a fixed environment).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from github import Auth, GithubIntegration

if TYPE_CHECKING:
    from process.settings import WorkerSettings

log = logging.getLogger(__name__)

#: Mint a new token when the current one has less than this left.
REFRESH_MARGIN = timedelta(minutes=5)
USER_AGENT = "agents-bot"

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class GitHubCredentials(Protocol):
    """What :class:`jobs.forge.github.GitHubForge` authenticates with, per repository."""

    def auth(self, repo: str) -> Auth.Auth:
        """PyGithub's auth for API calls on ``repo`` (the same object for every call)."""
        ...

    def token(self, repo: str) -> str:
        """The token to hand to the next git call on ``repo``, fresh enough to use."""
        ...

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every credential value used so far, for redaction."""
        ...

    def close(self) -> None: ...


class StaticToken:
    """``GITHUB_TOKEN``: one personal access token for everything."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("GitHub credentials need a token")
        self._token = token
        self._auth = Auth.Token(token)

    def auth(self, repo: str) -> Auth.Auth:
        return self._auth

    def token(self, repo: str) -> str:
        return self._token

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self._token,)

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return "StaticToken(***)"


class _InstallationAuth(Auth.AppInstallationAuth):
    """PyGithub's installation auth (it mints through ``GithubIntegration``), with the
    refresh decided by our clock and margin, and each new token reported."""

    def __init__(
        self,
        app: Auth.AppAuth,
        installation_id: int,
        *,
        clock: Clock,
        margin: timedelta,
        on_mint: Callable[[str, datetime], None],
    ) -> None:
        super().__init__(app, installation_id)
        self._clock = clock
        self._margin = margin
        self._on_mint = on_mint
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at: datetime | None = None

    @property
    def token(self) -> str:
        with self._lock:
            if (
                self._token is None
                or self._expires_at is None
                or self._expires_at - self._margin <= self._clock()
            ):
                authorization = self._get_installation_authorization()
                self._token, self._expires_at = authorization.token, authorization.expires_at
                self._on_mint(self._token, self._expires_at)
            return self._token


class AppInstallation:
    """A GitHub App's installation tokens, minted on first use and refreshed near expiry.

    ``installation_id``: the App's installation to use for every repository; without
    it, each repository's installation is looked up once (``GET
    /repos/{owner}/{repo}/installation``, authenticated with the App's JWT).
    """

    def __init__(
        self,
        app_id: int,
        private_key: str,
        *,
        base_url: str = "https://api.github.com",
        installation_id: int | None = None,
        timeout: int = 30,
        clock: Clock = _utcnow,
        margin: timedelta = REFRESH_MARGIN,
    ) -> None:
        if not private_key.strip():
            raise ValueError("a GitHub App needs its private key")
        self._app = Auth.AppAuth(app_id, private_key)
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._installation_id = installation_id
        self._clock = clock
        self._margin = margin
        self._lock = threading.Lock()
        self._integration: GithubIntegration | None = None
        self._installations: dict[str, int] = {}
        self._auths: dict[int, _InstallationAuth] = {}
        self._minted: list[str] = []
        # The key itself is a SecretStr setting (masked whole); its lines are masked too.
        mask_in_logs(*(line.strip() for line in private_key.splitlines()))

    def _github_integration(self) -> GithubIntegration:
        if self._integration is None:
            self._integration = GithubIntegration(
                auth=self._app,
                base_url=self._base_url,
                timeout=self._timeout,
                user_agent=USER_AGENT,
                retry=None,
                seconds_between_requests=None,
                seconds_between_writes=None,
                lazy=True,
            )
        return self._integration

    def installation_id(self, repo: str) -> int:
        if self._installation_id is not None:
            return self._installation_id
        with self._lock:
            found = self._installations.get(repo)
            if found is None:
                owner, _, name = repo.partition("/")
                found = int(self._github_integration().get_repo_installation(owner, name).id)
                self._installations[repo] = found
            return found

    def auth(self, repo: str) -> Auth.Auth:
        return self._installation_auth(repo)

    def _installation_auth(self, repo: str) -> _InstallationAuth:
        installation = self.installation_id(repo)
        with self._lock:
            auth = self._auths.get(installation)
            if auth is None:
                auth = _InstallationAuth(
                    self._app,
                    installation,
                    clock=self._clock,
                    margin=self._margin,
                    on_mint=self._minted_one,
                )
                auth.withRequester(self._github_integration().requester)
                self._auths[installation] = auth
            return auth

    def token(self, repo: str) -> str:
        return self._installation_auth(repo).token

    def _minted_one(self, token: str, expires_at: datetime) -> None:
        self._minted.append(token)
        mask_in_logs(token)
        log.info("minted a GitHub App installation token (expires %s)", expires_at.isoformat())

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(self._minted)

    @property
    def minted(self) -> int:
        """How many installation tokens this job has minted."""
        return len(self._minted)

    def close(self) -> None:
        if self._integration is not None:
            self._integration.close()
            self._integration = None

    def __repr__(self) -> str:
        return f"AppInstallation(app_id={self._app.app_id!r}, key=***)"


def mask_in_logs(*secrets: str) -> None:
    """Add secrets learnt at run time (minted tokens) to the process's log redactor."""
    from process.logs import Redactor

    values = {s for s in secrets if len(s) >= 16 and not s.startswith("-----")}
    if not values:
        return
    for handler in logging.getLogger().handlers:
        for found in handler.filters:
            if isinstance(found, Redactor):
                found.secrets = sorted({*found.secrets, *values}, key=len, reverse=True)


def from_settings(settings: WorkerSettings) -> GitHubCredentials | None:
    """The credentials ``AGENTS_FORGE=github`` uses; None for the local forge or if unset."""
    if settings.forge != "github":
        return None
    key = settings.github_app_private_key
    if settings.github_app_id is not None and key is not None:
        return AppInstallation(
            settings.github_app_id,
            key.get_secret_value(),
            base_url=settings.github_api_url,
            installation_id=settings.github_app_installation_id,
        )
    if settings.github_token is not None and settings.github_token.get_secret_value():
        return StaticToken(settings.github_token.get_secret_value())
    return None


def repo_of(url: str) -> str:
    """``owner/name`` from a clone URL (``https://github.com/acme/api.git``)."""
    parts = urlsplit(url).path.removesuffix(".git").strip("/").split("/")
    return "/".join(parts[-2:])
