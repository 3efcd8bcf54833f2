"""The JSON the fake GitHub answers with, shaped as GitHub's REST API documents it.

The version described is 2022-11-28, the one GitHub serves a client that asks for none
(PyGithub asks for none).

Every object is whole: each field GitHub's OpenAPI description marks as required is
there, and no field it does not know is. The contract tests
(``tests/fakes/github/test_contract.py``) hold these shapes to the models generated from
that description (githubkit's), so a client that works against the fake reads the same
fields it will read from GitHub. Values the fake has no notion of (stars, forks, sizes)
are the ones a new private repository has.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fakes.github.state import App, GitHubState, Pull, Repo, now

Json = dict[str, Any]

BOT_LOGIN = "agents-bot"
DOCS = "https://docs.github.com/rest"

#: The permissions docs/github.md asks a GitHub App for.
APP_PERMISSIONS = {
    "metadata": "read",
    "contents": "write",
    "pull_requests": "write",
    "checks": "read",
    "statuses": "read",
}

#: The App that runs GitHub Actions, which owns the check runs a workflow reports.
_ACTIONS_APP_ID = 15368


def error(status: int, message: str) -> Json:
    """``basic-error``: what GitHub answers a refused request with."""
    return {"message": message, "documentation_url": DOCS, "status": str(status)}


def validation_failed(error_item: Json) -> Json:
    """``validation-error``: a 422's body, one item in ``errors``."""
    return {"message": "Validation Failed", "errors": [error_item], "documentation_url": DOCS}


def user(state: GitHubState, login: str, *, kind: str = "User") -> Json:
    """``simple-user``."""
    digest = int(hashlib.sha256(login.encode()).hexdigest()[:8], 16)
    api = f"{state.base_url}/users/{login}"
    return {
        "login": login,
        "id": digest,
        "node_id": f"U_{digest}",
        "avatar_url": f"{state.base_url}/avatars/u/{digest}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{state.base_url}/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


def collaborator(state: GitHubState, login: str, role: str) -> Json:
    """``collaborator``: a user as a repository's collaborator list shows them."""
    return {**user(state, login), "role_name": role}


def repository(state: GitHubState, repo: Repo, *, full: bool = False) -> Json:
    """``repository`` (in a pull request's head and base) or ``minimal-repository``;
    with ``full``, ``full-repository`` (``GET /repos/{owner}/{repo}``)."""
    name = repo.full_name.split("/")[1]
    api = f"{state.base_url}/repos/{repo.full_name}"
    html = f"{state.base_url}/{repo.full_name}"
    host = state.base_url.split("://", 1)[-1]
    out: Json = {
        "id": repo.id,
        "node_id": f"R_{repo.id}",
        "name": name,
        "full_name": repo.full_name,
        "private": repo.private,
        "owner": user(state, repo.owner, kind="Organization"),
        "html_url": html,
        "description": None,
        "fork": False,
        "url": api,
        "forks_url": f"{api}/forks",
        "keys_url": f"{api}/keys{{/key_id}}",
        "collaborators_url": f"{api}/collaborators{{/collaborator}}",
        "teams_url": f"{api}/teams",
        "hooks_url": f"{api}/hooks",
        "issue_events_url": f"{api}/issues/events{{/number}}",
        "events_url": f"{api}/events",
        "assignees_url": f"{api}/assignees{{/user}}",
        "branches_url": f"{api}/branches{{/branch}}",
        "tags_url": f"{api}/tags",
        "blobs_url": f"{api}/git/blobs{{/sha}}",
        "git_tags_url": f"{api}/git/tags{{/sha}}",
        "git_refs_url": f"{api}/git/refs{{/sha}}",
        "trees_url": f"{api}/git/trees{{/sha}}",
        "statuses_url": f"{api}/statuses/{{sha}}",
        "languages_url": f"{api}/languages",
        "stargazers_url": f"{api}/stargazers",
        "contributors_url": f"{api}/contributors",
        "subscribers_url": f"{api}/subscribers",
        "subscription_url": f"{api}/subscription",
        "commits_url": f"{api}/commits{{/sha}}",
        "git_commits_url": f"{api}/git/commits{{/sha}}",
        "comments_url": f"{api}/comments{{/number}}",
        "issue_comment_url": f"{api}/issues/comments{{/number}}",
        "contents_url": f"{api}/contents/{{+path}}",
        "compare_url": f"{api}/compare/{{base}}...{{head}}",
        "merges_url": f"{api}/merges",
        "archive_url": f"{api}/{{archive_format}}{{/ref}}",
        "downloads_url": f"{api}/downloads",
        "issues_url": f"{api}/issues{{/number}}",
        "pulls_url": f"{api}/pulls{{/number}}",
        "milestones_url": f"{api}/milestones{{/number}}",
        "notifications_url": f"{api}/notifications{{?since,all,participating}}",
        "labels_url": f"{api}/labels{{/name}}",
        "releases_url": f"{api}/releases{{/id}}",
        "deployments_url": f"{api}/deployments",
        "created_at": repo.created_at,
        "updated_at": repo.created_at,
        "pushed_at": now(),
        "git_url": f"git://{host}/{repo.full_name}.git",
        "ssh_url": f"git@{host}:{repo.full_name}.git",
        "clone_url": f"{state.base_url}/git/{repo.full_name}.git",
        "svn_url": html,
        "homepage": None,
        "size": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "language": None,
        "has_issues": True,
        "has_projects": False,
        "has_downloads": True,
        "has_wiki": False,
        "has_pages": False,
        "has_discussions": False,
        "forks_count": 0,
        "mirror_url": None,
        "archived": False,
        "disabled": False,
        "open_issues_count": 0,
        "license": None,
        "allow_forking": False,
        "is_template": False,
        "web_commit_signoff_required": False,
        "topics": [],
        "visibility": "private" if repo.private else "public",
        "forks": 0,
        "open_issues": 0,
        "watchers": 0,
        "default_branch": repo.default_branch,
    }
    if full:
        out.update(
            permissions={
                "admin": False,
                "maintain": False,
                "push": True,
                "triage": True,
                "pull": True,
            },
            allow_squash_merge=True,
            allow_merge_commit=True,
            allow_rebase_merge=False,
            allow_auto_merge=False,
            delete_branch_on_merge=False,
            allow_update_branch=False,
            temp_clone_token="",
            network_count=0,
            subscribers_count=0,
        )
    return out


def pull_request(state: GitHubState, repo: Repo, pr: Pull, *, simple: bool = False) -> Json:
    """``pull-request``; with ``simple``, ``pull-request-simple`` (as listed)."""
    api = f"{state.base_url}/repos/{repo.full_name}"
    html = f"{state.base_url}/{repo.full_name}/pull/{pr.number}"
    head_sha = pr.head_sha
    if pr.state == "open":
        head_sha = repo.branch_sha(pr.head_ref) or head_sha
    repo_json = repository(state, repo)

    def part(ref: str, sha: str) -> Json:
        return {
            "label": f"{repo.owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": user(state, repo.owner, kind="Organization"),
            "repo": repo_json,
        }

    def link(href: str) -> Json:
        return {"href": href}

    pull_api = f"{api}/pulls/{pr.number}"
    issue_api = f"{api}/issues/{pr.number}"
    out: Json = {
        "url": pull_api,
        "id": pr.id,
        "node_id": pr.node_id,
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": issue_api,
        "number": pr.number,
        "state": pr.state,
        "locked": False,
        "title": pr.title,
        "user": user(state, BOT_LOGIN, kind="Bot"),
        "body": pr.body,
        "created_at": pr.created_at,
        "updated_at": pr.updated_at,
        "closed_at": pr.closed_at,
        "merged_at": pr.merged_at,
        "merge_commit_sha": pr.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "labels": [],
        "milestone": None,
        "draft": pr.draft,
        "commits_url": f"{pull_api}/commits",
        "review_comments_url": f"{pull_api}/comments",
        "review_comment_url": f"{api}/pulls/comments{{/number}}",
        "comments_url": f"{issue_api}/comments",
        "statuses_url": f"{api}/statuses/{head_sha}",
        "head": part(pr.head_ref, head_sha),
        "base": part(pr.base_ref, repo.branch_sha(pr.base_ref) or "0" * 40),
        "_links": {
            "self": link(pull_api),
            "html": link(html),
            "issue": link(issue_api),
            "comments": link(f"{issue_api}/comments"),
            "review_comments": link(f"{pull_api}/comments"),
            "review_comment": link(f"{api}/pulls/comments{{/number}}"),
            "commits": link(f"{pull_api}/commits"),
            "statuses": link(f"{api}/statuses/{head_sha}"),
        },
        "author_association": "NONE",
        "auto_merge": None,
        "active_lock_reason": None,
    }
    if simple:
        return out
    merged = pr.merged_at is not None
    out.update(
        merged=merged,
        mergeable=pr.state == "open",
        rebaseable=False,
        mergeable_state="draft" if pr.draft else "clean",
        merged_by=user(state, BOT_LOGIN, kind="Bot") if merged else None,
        comments=0,
        review_comments=0,
        maintainer_can_modify=False,
        commits=1,
        additions=0,
        deletions=0,
        changed_files=0,
    )
    return out


def review(state: GitHubState, repo: Repo, pr: Pull, index: int) -> Json:
    """``pull-request-review``: the ``index``-th review posted on ``pr``."""
    review_id, event, body, submitted_at = pr.reviews[index]
    pull_html = f"{state.base_url}/{repo.full_name}/pull/{pr.number}"
    pull_api = f"{state.base_url}/repos/{repo.full_name}/pulls/{pr.number}"
    html = f"{pull_html}#pullrequestreview-{review_id}"
    return {
        "id": review_id,
        "node_id": f"PRR_kwDO{review_id}",
        "user": user(state, BOT_LOGIN, kind="Bot"),
        "body": body,
        "state": {"COMMENT": "COMMENTED", "APPROVE": "APPROVED"}.get(event, "PENDING"),
        "html_url": html,
        "pull_request_url": pull_api,
        "_links": {"html": {"href": html}, "pull_request": {"href": pull_api}},
        "submitted_at": submitted_at,
        "commit_id": repo.branch_sha(pr.head_ref) or pr.head_sha,
        "author_association": "NONE",
    }


def review_comment(
    state: GitHubState,
    repo: Repo,
    pr: Pull,
    review_id: int,
    comment: tuple[str, int, str],
    login: str,
) -> Json:
    """``review-comment``: one line comment (``path``, ``line``, ``body``) of a review."""
    path, line, body = comment
    comment_id = state.next_id()
    api = f"{state.base_url}/repos/{repo.full_name}"
    pull_html = f"{state.base_url}/{repo.full_name}/pull/{pr.number}"
    pull_api = f"{api}/pulls/{pr.number}"
    url = f"{api}/pulls/comments/{comment_id}"
    html = f"{pull_html}#discussion_r{comment_id}"
    head = repo.branch_sha(pr.head_ref) or pr.head_sha
    stamp = now()
    return {
        "url": url,
        "pull_request_review_id": review_id,
        "id": comment_id,
        "node_id": f"PRRC_kwDO{comment_id}",
        "diff_hunk": f"@@ -{line},1 +{line},1 @@",
        "path": path,
        "position": line,
        "original_position": line,
        "commit_id": head,
        "original_commit_id": head,
        "user": user(state, login),
        "body": body,
        "created_at": stamp,
        "updated_at": stamp,
        "html_url": html,
        "pull_request_url": pull_api,
        "author_association": "COLLABORATOR" if login in repo.permissions else "NONE",
        "_links": {
            "self": {"href": url},
            "html": {"href": html},
            "pull_request": {"href": pull_api},
        },
        "side": "RIGHT",
        "line": line,
        "original_line": line,
        "subject_type": "line",
    }


def _actions_app(state: GitHubState) -> Json:
    """``integration``: the GitHub Actions App, as check runs name it."""
    stamp = "2018-07-30T09:30:17Z"
    return {
        "id": _ACTIONS_APP_ID,
        "slug": "github-actions",
        "node_id": "MDM6QXBwMTUzNjg=",
        "client_id": "Iv1.05c79e9ad1f6bdfa",
        "owner": user(state, "github", kind="Organization"),
        "name": "GitHub Actions",
        "description": "Automate your workflow from idea to production",
        "external_url": "https://help.github.com/en/actions",
        "html_url": f"{state.base_url}/apps/github-actions",
        "created_at": stamp,
        "updated_at": stamp,
        "permissions": {"checks": "write", "contents": "write", "metadata": "read"},
        "events": ["check_run", "check_suite", "pull_request", "push"],
    }


def check_run(state: GitHubState, repo: Repo, sha: str, run: Json) -> Json:
    """``check-run``, from a test's ``{name, status, conclusion, output, html_url}``."""
    run_id = state.next_id()
    output = run.get("output") or {}
    status = run.get("status", "completed")
    completed = status == "completed"
    api = f"{state.base_url}/repos/{repo.full_name}"
    html_url = run.get("html_url") or f"{state.base_url}/{repo.full_name}/runs/{run_id}"
    return {
        "id": run_id,
        "name": run["name"],
        "node_id": f"CR_{run_id}",
        "head_sha": sha,
        "external_id": "",
        "url": f"{api}/check-runs/{run_id}",
        "html_url": html_url,
        "details_url": html_url,
        "status": status,
        "conclusion": run.get("conclusion") if completed else None,
        "started_at": now(),
        "completed_at": now() if completed else None,
        "output": {
            "title": output.get("title"),
            "summary": output.get("summary"),
            "text": output.get("text"),
            "annotations_count": 0,
            "annotations_url": f"{api}/check-runs/{run_id}/annotations",
        },
        "check_suite": {"id": state.next_id()},
        "app": _actions_app(state),
        "pull_requests": [],
    }


def commit_status(state: GitHubState, repo: Repo, sha: str, status: Json) -> Json:
    """``simple-commit-status``, from a test's ``{context, state, description, target_url}``."""
    status_id = state.next_id()
    return {
        "url": f"{state.base_url}/repos/{repo.full_name}/statuses/{sha}",
        "avatar_url": None,
        "id": status_id,
        "node_id": f"SC_{status_id}",
        "state": status["state"],
        "description": status.get("description"),
        "target_url": status.get("target_url"),
        "context": status["context"],
        "created_at": now(),
        "updated_at": now(),
    }


def combined_status(state: GitHubState, repo: Repo, sha: str) -> Json:
    """``combined-commit-status``: failure wins, then pending (or none at all)."""
    statuses = repo.statuses.get(sha, [])
    states = {s["state"] for s in statuses}
    if states & {"failure", "error"}:
        overall = "failure"
    elif not statuses or "pending" in states:
        overall = "pending"
    else:
        overall = "success"
    api = f"{state.base_url}/repos/{repo.full_name}"
    return {
        "state": overall,
        "statuses": statuses,
        "sha": sha,
        "total_count": len(statuses),
        "repository": repository(state, repo),
        "commit_url": f"{api}/commits/{sha}",
        "url": f"{api}/commits/{sha}/status",
    }


def installation(state: GitHubState, app: App, repo: Repo) -> Json:
    """``installation``: the App's installation on ``repo``'s owner."""
    iid = app.installation_id
    account = user(state, repo.owner, kind="Organization")
    return {
        "id": iid,
        "client_id": f"Iv1.{app.app_id:016x}",
        "account": account,
        "repository_selection": "selected",
        "access_tokens_url": f"{state.base_url}/app/installations/{iid}/access_tokens",
        "repositories_url": f"{state.base_url}/installation/repositories",
        "html_url": f"{state.base_url}/organizations/{repo.owner}/settings/installations/{iid}",
        "app_id": app.app_id,
        "app_slug": "agents",
        "target_id": account["id"],
        "target_type": "Organization",
        "permissions": dict(APP_PERMISSIONS),
        "events": [],
        "created_at": now(),
        "updated_at": now(),
        "single_file_name": None,
        "has_multiple_single_files": False,
        "single_file_paths": [],
        "suspended_by": None,
        "suspended_at": None,
    }


def installation_token(token: str, expires_at: str) -> Json:
    """``installation-token``."""
    return {
        "token": token,
        "expires_at": expires_at,
        "permissions": dict(APP_PERMISSIONS),
        "repository_selection": "selected",
    }


def issue_comment(state: GitHubState, repo: Repo, number: int, login: str, body: str) -> Json:
    """``issue-comment``."""
    comment_id = state.next_id()
    api = f"{state.base_url}/repos/{repo.full_name}"
    stamp = now()
    return {
        "id": comment_id,
        "node_id": f"IC_kwDO{comment_id}",
        "url": f"{api}/issues/comments/{comment_id}",
        "html_url": f"{state.base_url}/{repo.full_name}/pull/{number}#issuecomment-{comment_id}",
        "issue_url": f"{api}/issues/{number}",
        "body": body,
        "user": user(state, login, kind="Bot" if login.endswith("[bot]") else "User"),
        "created_at": stamp,
        "updated_at": stamp,
        "author_association": "NONE",
    }
