"""One sticky pull-request comment: the report, posted once and then updated in place.

Through GitHub's REST API with the job's ``GITHUB_TOKEN`` and the standard library's HTTP. The
comment is found again by a hidden marker in its body, among the comments of the job's own
account. Outside GitHub Actions nothing is sent: the caller prints what would be posted.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlci._secrets import redact
from mlci.errors import MlciError

MARKER = "<!-- mlci:sticky-report -->"
LIMIT = 65536  # GitHub's limit on a comment's body, in characters
ATTEMPTS = 3  # tries of a request that gets a 5xx or no answer
BACKOFF = 2.0  # seconds before the second try; doubled after
TIMEOUT = 30
AUTHOR = "github-actions[bot]"  # the account GITHUB_TOKEN writes as
API_VERSION = "2022-11-28"
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


class CommentError(MlciError):
    """GitHub refused the comment, or did not answer."""


@dataclasses.dataclass(frozen=True)
class Comment:
    """What happened: ``created``, ``updated``, ``printed`` (not in CI) or ``skipped`` (why)."""

    action: str
    url: str = ""
    reason: str = ""
    body: str = ""


@dataclasses.dataclass(frozen=True)
class _Answer:
    status: int
    body: Any
    link: str


def post_comment(
    report: str,
    env: Mapping[str, str],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Comment:
    """Create or update the pull request's mlci comment with ``report``; what was done."""
    body = _fit(report)
    token = env.get("GITHUB_TOKEN", "")
    repository = env.get("GITHUB_REPOSITORY", "")
    event_path = env.get("GITHUB_EVENT_PATH", "")
    if env.get("GITHUB_ACTIONS") != "true" or not (token and repository and event_path):
        return Comment("printed", body=body)
    event = _event(event_path)
    pull = event.get("pull_request")
    if not isinstance(pull, dict) or "number" not in pull:
        return Comment("skipped", reason="not a pull request event: there is nothing to comment on")
    head = pull.get("head", {}).get("repo") or {}
    if head.get("full_name") and head.get("full_name") != repository:
        return Comment(
            "skipped",
            reason=f"a pull request from the fork {head['full_name']}: its token cannot write "
            "comments; the report is in this job's summary",
        )
    api = env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    client = _Client(api, token, sleep)
    comments = f"{api}/repos/{repository}/issues/{pull['number']}/comments"
    try:
        found = _find(client, comments, env.get("MLCI_COMMENT_AUTHOR", AUTHOR))
        if found is None:
            answer = client.call("POST", comments, {"body": body}, expect=201)
            action = "created"
        else:
            url = f"{api}/repos/{repository}/issues/comments/{found}"
            answer = client.call("PATCH", url, {"body": body}, expect=200)
            action = "updated"
    except _Forbidden as error:
        return Comment(
            "skipped",
            reason=f"GitHub refused to write the comment ({error}): the job's token may be "
            "read-only (pull requests from forks, or no `pull-requests: write`); the report "
            "is in this job's summary",
        )
    return Comment(action, url=str(answer.body.get("html_url", "")), body=body)


def _fit(report: str) -> str:
    """The marker, then the report, cut to GitHub's limit with a note when it is longer."""
    body = f"{MARKER}\n{redact(report).rstrip()}\n"
    if len(body) <= LIMIT:
        return body
    note = "\n\n*(cut to GitHub's comment limit: the whole report is in the job's summary)*\n"
    return body[: LIMIT - len(note)] + note


def _event(path: str) -> dict[str, Any]:
    try:
        with Path(path).open(encoding="utf-8") as stream:
            event = json.load(stream)
    except (OSError, ValueError) as error:
        raise CommentError(f"{path}: cannot read the GitHub event ({error})") from None
    return event if isinstance(event, dict) else {}


def _find(client: _Client, url: str, author: str) -> int | None:
    """The id of mlci's comment among every page of the pull request's comments, or None."""
    page: str | None = f"{url}?per_page=100"
    while page:
        answer = client.call("GET", page, None, expect=200)
        for comment in answer.body if isinstance(answer.body, list) else []:
            user = (comment.get("user") or {}).get("login")
            if user == author and MARKER in str(comment.get("body", "")):
                return int(comment["id"])
        match = _NEXT.search(answer.link)
        page = match.group(1) if match else None
        if page and not page.startswith(client.api + "/"):
            raise CommentError("GitHub's next page points outside its API; not followed")
    return None


class _Forbidden(Exception):
    """A 403: the token may not write here."""


class _Client:
    """JSON requests to GitHub's API with the token; 5xx and lost connections tried again."""

    def __init__(self, api: str, token: str, sleep: Callable[[float], None]) -> None:
        self.api = api
        self.token = token
        self.sleep = sleep

    def call(self, method: str, url: str, payload: Any, *, expect: int) -> _Answer:
        # Here, not at the top: every command imports reporting, and urllib.request with
        # http.client and ssl costs 30 ms that only the comment session needs.
        import urllib.error
        import urllib.request

        data = None if payload is None else json.dumps(payload).encode("utf-8")
        where = f"{method} {url.split('?')[0].removeprefix(self.api)}"
        for attempt in range(1, ATTEMPTS + 1):
            request = urllib.request.Request(url, data=data, method=method)
            request.add_header("Accept", "application/vnd.github+json")
            request.add_header("Authorization", f"Bearer {self.token}")
            request.add_header("X-GitHub-Api-Version", API_VERSION)
            if data is not None:
                request.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                    status, raw = response.status, response.read()
                    link = response.headers.get("Link", "")
            except urllib.error.HTTPError as error:
                detail = _message(error.read())
                if error.code == 403:
                    raise _Forbidden(f"403 on {where}: {detail}") from None
                if error.code < 500 or attempt == ATTEMPTS:
                    raise CommentError(
                        f"GitHub answered {error.code} to {where}"
                        + (f" after {attempt} tries" if error.code >= 500 else "")
                        + f": {detail}"
                    ) from None
            except (urllib.error.URLError, OSError) as error:
                if attempt == ATTEMPTS:
                    reason = getattr(error, "reason", error)
                    raise CommentError(
                        f"GitHub did not answer {where} after {attempt} tries ({reason})"
                    ) from None
            else:
                if status != expect:
                    raise CommentError(f"GitHub answered {status} to {where}, not {expect}")
                try:
                    return _Answer(status, json.loads(raw or b"null"), link)
                except ValueError:
                    raise CommentError(f"GitHub's answer to {where} is not JSON") from None
            self.sleep(BACKOFF * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover


def _message(raw: bytes) -> str:
    """GitHub's error message, without the rest of its body."""
    try:
        message = json.loads(raw).get("message", "")
    except (ValueError, AttributeError):
        message = ""
    return str(message)[:300] or "no message"
