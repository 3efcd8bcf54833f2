"""The fake GitHub's pull-request page: what it shows, that it escapes, and that its
comment box sends the signed ``issue_comment`` webhook GitHub would."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from fakes.github import pages
from fakes.github.server import FakeGitHub
from jobs.forge import PublishRequest, push_and_open_pr
from jobs.forge.github import GitHubForge
from tests.forge.conftest import REPO, TOKEN, MakePatch, first_change

SECRET = "page-secret"

DIFF = """diff --git a/app/client.py b/app/client.py
index 1111111..2222222 100644
--- a/app/client.py
+++ b/app/client.py
@@ -1,2 +1,2 @@
-RETRIES = 3
+RETRIES = int(env('N', 3))
{space}
diff --git a/logo.bin b/logo.bin
new file mode 100644
index 0000000..3333333
Binary files /dev/null and b/logo.bin differ
diff --git a/old.txt b/old.txt
deleted file mode 100644
index 4444444..0000000
--- a/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-gone
""".format(space=" ")


def test_a_diff_splits_file_by_file() -> None:
    files, truncated = pages.split_diff(DIFF)
    assert not truncated
    assert [(f.path, f.status, f.additions, f.deletions) for f in files] == [
        ("app/client.py", "modified", 1, 1),
        ("logo.bin", "added", 0, 0),
        ("old.txt", "deleted", 0, 1),
    ]
    assert files[0].lines == ["@@ -1,2 +1,2 @@", "-RETRIES = 3", "+RETRIES = int(env('N', 3))", " "]


def test_an_oversized_diff_is_cut_and_says_so() -> None:
    files, truncated = pages.split_diff(DIFF * 2 + "x" * pages.MAX_DIFF_CHARS)
    assert truncated
    assert len(files) == 6


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, tuple[tuple[str, str | None], ...]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(
            (tag, tuple((k, None if k in ("value", "href", "action") else v) for k, v in attrs))
        )

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    tags.close()
    return tags


def view_with(text: str) -> pages.PullView:
    diff = (
        f"diff --git a/{text} b/{text}\n--- a/{text}\n+++ b/{text}\n@@ -1 +1 @@\n-{text}\n+{text}\n"
    )
    files, _ = pages.split_diff(diff)
    return pages.PullView(
        repo=f"acme/{text}",
        number=1,
        title=text,
        body=text,
        state="open",
        draft=False,
        head_ref=text,
        base_ref="main",
        head_sha="a" * 40,
        author=text,
        files=files,
        checks=[pages.CheckView(text, text, f"https://ci.test/{text}")],
        conversation=[pages.CommentView(text, text, text)],
    )


@seed(20)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]),
        min_size=1,
        max_size=40,
    )
    | st.sampled_from(
        [
            "<script>alert(1)</script>",
            '"><img src=x onerror=alert(1)>',
            "</pre></section><form>",
            "&amp;<!--",
        ]
    )
)
def test_nothing_from_the_repository_becomes_markup(text: str) -> None:
    """Whatever the title, body, paths, checks and comments hold, the page has the same
    elements and attributes as for a harmless word, and the text reads back as given."""
    hostile, harmless = (
        parsed(pages.pull_page(view_with(text))),
        parsed(pages.pull_page(view_with("x"))),
    )
    assert hostile.tags == harmless.tags
    assert text.strip() in "".join(hostile.text) or not text.strip()


# -- served by the fake, with the real forge's PR ---------------------------------------


class Receiver(BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    got: list[tuple[dict[str, str], bytes]] = []
    handler = type("Handler", (Receiver,), {"got": got})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/github/events", got
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def arrived(got: list[Any], count: int) -> None:
    """Wait for the receiver to have ``count`` deliveries (a bounded wait, not a timing)."""
    waited = threading.Event()
    for _ in range(1000):
        if len(got) >= count:
            return
        waited.wait(0.01)
    raise AssertionError(f"{len(got)} deliveries arrived, not {count}")


def fetch(url: str, data: dict[str, str] | None = None) -> tuple[int, str, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, data=body, timeout=10) as answer:
            return answer.status, answer.read().decode(), answer.headers.get("Location", "")
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read().decode(), err.headers.get("Location", "")


def test_the_page_shows_the_pull_request_and_its_comment_box_sends_the_webhook(
    bare: Path,
    make_patch: MakePatch,
    base_commit: str,
    tmp_path: Path,
    receiver: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    url, got = receiver
    with (
        FakeGitHub(TOKEN) as fake,
        GitHubForge(TOKEN, base_url=fake.base_url, throttle=False) as forge,
    ):
        fake.add_repo(REPO, bare=bare)
        fake.deliver_to(url, SECRET)
        publish = PublishRequest(
            run_id=7,
            repo=REPO,
            request="read the retry limit from <env>",
            summary="Read the retry limit from the environment",
            patch=make_patch(base_commit, first_change),
            base_commit=base_commit,
        )
        pr = push_and_open_pr(forge, publish, tmp_path / "publish").pr
        fake.set_check_runs(REPO, pr.head_sha, [{"name": "ci/<test>", "conclusion": "failure"}])
        forge.comment(REPO, pr.number, "Iteration 1 is pushed & <ready>.")
        api_calls = len(fake.requests)
        assert pr.url == f"{fake.base_url}/{REPO}/pull/{pr.number}"

        status, html, _ = fetch(pr.url)
        assert status == 200
        assert "Read the retry limit from the environment" in html
        shown = parsed(html)
        text = "".join(shown.text)
        assert "app/client.py" in text
        assert "+RETRIES = int(env('N', 3))" in text
        assert "ci/<test> failure" in text  # escaped, and read back as written
        assert "Iteration 1 is pushed & <ready>." in text
        assert "read the retry limit from <env>" in text  # the body names the request
        assert html.count('data-testid="pr-file"') >= 3

        status, _, location = fetch(
            f"{fake.base_url}/{REPO}/pull/{pr.number}/comments",
            {"user": "octocat", "body": "@agents rename the flag"},
        )
        assert (status, location) == (303, f"/{REPO}/pull/{pr.number}?user=octocat#conversation")
        arrived(got, 1)  # sent once the page's answer is out, as GitHub does
        ((headers, body),) = got
        assert headers["x-github-event"] == "issue_comment"
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-hub-signature-256"] == f"sha256={digest}"
        event = json.loads(body)
        assert (event["action"], event["sender"]["login"]) == ("created", "octocat")
        assert event["comment"]["body"] == "@agents rename the flag"
        assert event["issue"]["number"] == pr.number
        assert event["issue"]["pull_request"]
        _, again, _ = fetch(f"{fake.base_url}{location}")
        assert "@agents rename the flag" in "".join(parsed(again).text)
        assert len(fake.requests) == api_calls  # pages are a browser's, not the API's

        for bad in ({"user": "<x>", "body": "hi"}, {"user": "octocat", "body": "  "}):
            assert fetch(f"{fake.base_url}/{REPO}/pull/{pr.number}/comments", bad)[0] in (400, 422)
        assert fetch(f"{fake.base_url}/{REPO}/pull/99")[0] == 404
        assert fetch(f"{fake.base_url}/{REPO}/pull/{pr.number}?user=%3Cx%3E")[0] == 400
        assert len(got) == 1
