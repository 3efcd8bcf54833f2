"""Who a request is, as GitHub decides it: a token, a GitHub App's JWT, or neither.

The API takes ``Authorization: token|Bearer <token>``; git takes HTTP Basic with the
token as the password. With an App enabled (:meth:`FakeGitHub.enable_app`), the App's
own endpoints take only its RS256 JWT (checked against its public key, at most ten
minutes long, as GitHub demands) and everything else only an unexpired installation
token the fake minted: not the JWT, not the static token.
"""

from __future__ import annotations

import base64
import re

import jwt

from fakes.github.state import App, GitHubState


def credential(state: GitHubState, header: str | None, *, git: bool) -> str:
    """What ``header`` carries, as :attr:`RecordedRequest.credential` names it."""
    if not header:
        return ""
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if git:
        if scheme != "basic":
            return ""
        try:
            value = base64.b64decode(value, validate=True).decode().partition(":")[2]
        except ValueError:
            return ""
    elif scheme not in ("token", "bearer"):
        return ""
    app = state.app
    if app is None:
        return "token" if value == state.token else ""
    with state.lock:
        minted = app.tokens.get(value)
        if minted is not None:
            return f"installation-{minted[0]}" if minted[1] > app.clock() else ""
    if not git and scheme == "bearer" and valid_jwt(app, value):
        return "jwt"
    return ""


def valid_jwt(app: App, value: str) -> bool:
    try:
        claims = jwt.decode(
            value,
            app.public_key,
            algorithms=["RS256"],
            options={"require": ["iat", "exp", "iss"]},
            leeway=0,
        )
    except jwt.PyJWTError:
        return False
    # GitHub refuses JWTs that live longer than 10 minutes.
    return str(claims["iss"]) == str(app.app_id) and 0 < claims["exp"] - claims["iat"] <= 660


def accepts(state: GitHubState, credential: str, path: str, *, git: bool) -> bool:
    """Whether ``credential`` may call ``path``."""
    if state.app is None:
        return credential == "token"
    app_endpoint = not git and (
        path.startswith("/app/") or re.fullmatch(r"/repos/[^/]+/[^/]+/installation", path)
    )
    return credential == "jwt" if app_endpoint else credential.startswith("installation-")
