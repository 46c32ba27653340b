"""The sticky pull-request comment, against a local server that answers as GitHub's REST API does.

The server implements the three endpoints the comment uses (list an issue's comments, create
one, update one) with GitHub's status codes and bodies: pagination with a ``Link`` header, a
403 for a read-only token, and 5xx answers on demand.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlci.cli import main
from mlci.reporting import MARKER, CommentError, _comment, post_comment

TOKEN = "ghs_mlci-test-token-7c1e"
REPO = "octo/iris"
BOT = {"login": "github-actions[bot]", "type": "Bot"}


@dataclasses.dataclass
class GitHub:
    """The state of the fake API: comments per issue, requests seen, failures to give."""

    url: str = ""
    comments: dict[int, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    requests: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    failures: list[int] = dataclasses.field(default_factory=list)  # statuses to answer first
    read_only: bool = False
    next_id: int = 1000

    def add(self, issue: int, body: str, user: dict[str, str]) -> dict[str, Any]:
        self.next_id += 1
        comment = {
            "id": self.next_id,
            "body": body,
            "user": user,
            "html_url": f"https://github.com/{REPO}/pull/{issue}#issuecomment-{self.next_id}",
        }
        self.comments.setdefault(issue, []).append(comment)
        return comment


def handler_for(github: GitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def handle_any(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            github.requests.append((self.command, url.path))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self.reply(401, {"message": "Bad credentials"})
            if github.failures:
                status = github.failures.pop(0)
                return self.reply(status, {"message": "Server Error"})
            listing = f"/repos/{REPO}/issues/"
            if self.command == "GET" and url.path.startswith(listing):
                issue = int(url.path.removeprefix(listing).split("/")[0])
                query = urllib.parse.parse_qs(url.query)
                per_page = min(int(query.get("per_page", ["30"])[0]), 100)
                page = int(query.get("page", ["1"])[0])
                items = github.comments.get(issue, [])
                chunk = items[(page - 1) * per_page : page * per_page]
                headers = {}
                if page * per_page < len(items):
                    nxt = f"{github.url}{url.path}?per_page={per_page}&page={page + 1}"
                    headers["Link"] = f'<{nxt}>; rel="next", <{nxt}>; rel="last"'
                return self.reply(200, chunk, headers)
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length) or b"{}")
            if github.read_only:
                return self.reply(403, {"message": "Resource not accessible by integration"})
            if self.command == "POST" and url.path.startswith(listing):
                issue = int(url.path.removeprefix(listing).split("/")[0])
                return self.reply(201, github.add(issue, payload["body"], BOT))
            if self.command == "PATCH" and url.path.startswith(f"/repos/{REPO}/issues/comments/"):
                wanted = int(url.path.rsplit("/", 1)[1])
                for comment in (c for cs in github.comments.values() for c in cs):
                    if comment["id"] == wanted:
                        comment["body"] = payload["body"]
                        return self.reply(200, comment)
                return self.reply(404, {"message": "Not Found"})
            return self.reply(404, {"message": "Not Found"})

        do_GET = do_POST = do_PATCH = handle_any

    return Handler


@pytest.fixture
def github() -> Iterator[GitHub]:
    state = GitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    # shutdown() waits for the next poll: 0.5 s by default, on every test
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def ci_env(tmp_path: Path, github: GitHub, *, head: str = REPO, number: int = 7) -> dict[str, str]:
    """What a `pull_request` job's environment holds."""
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps({"pull_request": {"number": number, "head": {"repo": {"full_name": head}}}})
    )
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_API_URL": github.url,
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }


def no_sleep(seconds: float) -> None:
    pass


def mlci_comments(github: GitHub, issue: int = 7) -> list[dict[str, Any]]:
    return [c for c in github.comments.get(issue, []) if MARKER in c["body"]]


@pytest.mark.integration
def test_the_comment_is_created_once_then_updated_in_place(tmp_path: Path, github: GitHub) -> None:
    env = ci_env(tmp_path, github)
    # 150 comments before it: people's (one quotes the marker), and the bot's without it.
    for n in range(150):
        user = BOT if n % 50 == 0 else {"login": f"dev{n}", "type": "User"}
        github.add(7, f"comment {n}" + (f" quoting {MARKER}" if n == 3 else ""), user)
    first = post_comment("## Quality gate: passed", env, sleep=no_sleep)
    assert first.action == "created"
    assert first.url.endswith(f"#issuecomment-{github.next_id}")
    assert len(github.requests) == 3  # two pages of 100, then the POST
    second = post_comment("## Quality gate: FAILED", env, sleep=no_sleep)
    assert second.action == "updated"
    ours = [c for c in mlci_comments(github) if c["user"] == BOT]
    assert len(ours) == 1
    assert ours[0]["body"] == f"{MARKER}\n## Quality gate: FAILED\n"
    assert len(github.comments[7]) == 151  # nobody else's comment was touched
    assert github.comments[7][3]["body"] == f"comment 3 quoting {MARKER}"
    assert github.requests[-1][0] == "PATCH"


@pytest.mark.integration
def test_a_read_only_token_is_said_in_the_summary_and_exits_zero(
    tmp_path: Path,
    github: GitHub,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    github.read_only = True
    for name, value in ci_env(tmp_path, github).items():
        monkeypatch.setenv(name, value)
    (project / "artifacts").mkdir()
    (project / "artifacts" / "report.md").write_text("# mlci report\n")
    assert main(["-C", str(project), "comment"]) == 0
    out = capsys.readouterr().out
    assert "comment skipped: GitHub refused to write the comment (403 on POST" in out
    assert "Resource not accessible by integration" in out
    summary = (tmp_path / "summary.md").read_text()
    assert "### Pull request comment" in summary
    assert "read-only" in summary
    assert TOKEN not in out + summary


@pytest.mark.integration
def test_a_pull_request_from_a_fork_is_skipped_without_a_request(
    tmp_path: Path, github: GitHub
) -> None:
    result = post_comment("report", ci_env(tmp_path, github, head="someone/iris"), sleep=no_sleep)
    assert result.action == "skipped"
    assert "a pull request from the fork someone/iris" in result.reason
    assert github.requests == []


@pytest.mark.integration
def test_a_5xx_is_retried_a_bounded_number_of_times(tmp_path: Path, github: GitHub) -> None:
    env = ci_env(tmp_path, github)
    waits: list[float] = []
    github.failures = [502, 503]
    assert post_comment("report", env, sleep=waits.append).action == "created"
    assert waits == [2.0, 4.0]
    github.failures = [500] * 10
    requests = len(github.requests)
    with pytest.raises(
        CommentError, match=r"GitHub answered 500 to GET /repos/octo/iris/.* 3 tries"
    ):
        post_comment("report", env, sleep=no_sleep)
    assert len(github.requests) - requests == _comment.ATTEMPTS


@pytest.mark.integration
def test_a_bad_token_is_an_error_that_does_not_show_it(tmp_path: Path, github: GitHub) -> None:
    env = {**ci_env(tmp_path, github), "GITHUB_TOKEN": "ghs_wrong"}
    with pytest.raises(
        CommentError, match=r"GitHub answered 401 to GET .*Bad credentials"
    ) as error:
        post_comment("report", env, sleep=no_sleep)
    assert "ghs_wrong" not in str(error.value)


def test_outside_a_pull_request_job_it_prints_what_it_would_post(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    (project / "artifacts").mkdir()
    (project / "artifacts" / "report.md").write_text("# mlci report\n\n## Training: trained\n")
    assert main(["-C", str(project), "comment"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("not in a GitHub Actions pull request job: this is what would be posted")
    assert f"{MARKER}\n# mlci report\n\n## Training: trained\n" in out


@pytest.mark.integration
def test_a_push_event_has_no_pull_request_to_comment_on(tmp_path: Path, github: GitHub) -> None:
    env = ci_env(tmp_path, github)
    Path(env["GITHUB_EVENT_PATH"]).write_text(json.dumps({"ref": "refs/heads/main"}))
    result = post_comment("report", env, sleep=no_sleep)
    assert result.action == "skipped"
    assert "not a pull request event" in result.reason


@pytest.mark.integration
def test_a_report_longer_than_githubs_limit_is_cut_with_a_note(
    tmp_path: Path, github: GitHub
) -> None:
    result = post_comment("x" * 70_000, ci_env(tmp_path, github), sleep=no_sleep)
    [ours] = mlci_comments(github)
    assert len(ours["body"]) == _comment.LIMIT
    assert ours["body"].startswith(MARKER)
    assert ours["body"].endswith("the whole report is in the job's summary)*\n")
    assert result.action == "created"


def test_without_a_report_the_command_says_what_to_run(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(project), "comment"]) == 2
    assert "cannot read the report" in capsys.readouterr().err
