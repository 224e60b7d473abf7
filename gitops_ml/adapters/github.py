"""The only GitHub REST client: pull requests and the one comment gitops-ml keeps on each, the one
issue gitops-ml keeps per monitored endpoint, and workflow dispatches.

httpx talks to GITHUB_API_URL (default https://api.github.com) with GITHUB_TOKEN. 401/403 become
a GitHubError that says what to fix; 5xx and dropped connections are retried with exponential
backoff, then fail. Settings are read when a client is made, never at import time; nothing prints.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import httpx

from gitops_ml import __version__
from gitops_ml.errors import ConfigError, GitHubError

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
ACCEPT = "application/vnd.github+json"
# GitHub answers 422 "body is too long (maximum is 65536 characters)" to a longer comment
MAX_COMMENT_CHARS = 65_536
CUT_NOTE = "_… cut to fit GitHub's 65,536-character limit; run `gitops-ml diff --base <base branch>` locally for the rest._"

# matches the `origin` forms GitHub hands out: https://github.com/o/r(.git), git@github.com:o/r(.git), ssh://git@github.com/o/r
_REMOTE = re.compile(r"^(?:https?://(?:[^@/]+@)?[^/]+/|ssh://(?:[^@/]+@)?[^/]+/|[^@/]+@[^:/]+:)(?P<owner>[^/]+)/(?P<name>[^/]+?)(?:\.git)?/?$")


@dataclass(frozen=True)
class GitHubSettings:
    """Where and as whom to talk to GitHub."""

    token: str
    repository: str  # owner/name
    api_url: str = DEFAULT_API_URL
    attempts: int = 4
    backoff: float = 1.0  # seconds before the first retry; doubles each time

    @property
    def owner(self) -> str:
        return self.repository.split("/", 1)[0]


def repository_from_remote(url: str | None) -> str | None:
    """owner/name from an `origin` URL, or None when it does not look like a GitHub remote."""
    if not url:
        return None
    match = _REMOTE.match(url.strip())
    return f"{match['owner']}/{match['name']}" if match else None


def settings_from_env(environ: Mapping[str, str], origin_url: str | None = None) -> GitHubSettings:
    """GITHUB_TOKEN, GITHUB_API_URL and GITHUB_REPOSITORY (or the origin URL); ConfigError when
    something is missing, before anything is written."""
    token = environ.get("GITHUB_TOKEN", "").strip()
    if not token:
        raise ConfigError(
            "GITHUB_TOKEN is not set: talking to GitHub (a pull request, an issue, a workflow dispatch) needs a token",
            hint="in GitHub Actions pass `GITHUB_TOKEN: ${{ github.token }}` (permission pull-requests: write); locally use a token with repo scope",
        )
    repository = environ.get("GITHUB_REPOSITORY", "").strip() or repository_from_remote(origin_url)
    if not repository or not re.fullmatch(r"[\w.-]+/[\w.-]+", repository):
        raise ConfigError(
            "cannot tell which GitHub repository to open the pull request in",
            hint="set GITHUB_REPOSITORY=owner/name, or use a GitHub URL for the `origin` remote",
        )
    try:
        backoff = float(environ.get("GITOPS_ML_GITHUB_BACKOFF", "1.0"))
    except ValueError:
        raise ConfigError("GITOPS_ML_GITHUB_BACKOFF must be a number of seconds") from None
    api_url = (environ.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL).rstrip("/")
    return GitHubSettings(token, repository, api_url, backoff=backoff)


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str  # html_url, for people
    head: str
    base: str


@dataclass(frozen=True)
class Issue:
    number: int
    url: str  # html_url, for people
    title: str
    body: str


@dataclass(frozen=True)
class Comment:
    id: int
    url: str
    cut: bool = False  # the body was over MAX_COMMENT_CHARS and only its first part was sent


def _size(text: str) -> int:
    # UTF-8 bytes are never fewer than characters, so this bound holds however GitHub counts
    return len(text.encode("utf-8"))


def fit_comment(text: str, limit: int = MAX_COMMENT_CHARS, note: str = CUT_NOTE) -> tuple[str, bool]:
    """`text`, or its first lines with open code fences and <details> closed and `note` after
    them, within `limit`; (text, cut)."""
    if _size(text) <= limit:
        return text, False
    kept: list[str] = []
    used = 0
    fence = False
    details = 0
    for line in text.splitlines():
        after_fence = fence != line.lstrip().startswith("```")
        after_details = details + line.count("<details>") - line.count("</details>")
        closing_after = ("```\n" if after_fence else "") + "</details>\n" * max(0, after_details)
        if used + _size(line) + 1 + _size(closing_after) + _size(note) + 2 > limit:
            break
        kept.append(line)
        used += _size(line) + 1
        fence, details = after_fence, max(0, after_details)
    closing = ("```\n" if fence else "") + "</details>\n" * details
    return "\n".join(kept) + "\n" + closing + "\n" + note, True


class GitHubClient:
    """Pull requests and comments of one repository."""

    def __init__(
        self,
        settings: GitHubSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._login: str | None = None
        self._login_asked = False
        self._http = httpx.Client(
            base_url=settings.api_url,
            headers={
                "Authorization": f"Bearer {settings.token}",
                "Accept": ACCEPT,
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": f"gitops-ml/{__version__}",
            },
            timeout=httpx.Timeout(30.0),
            transport=transport,
            trust_env=False,  # GITHUB_API_URL is the only address; proxies from the environment do not apply
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "GitHubClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _repo_path(self) -> str:
        return f"/repos/{self.settings.repository}"

    # --- transport ---------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None, ok: tuple[int, ...] = (200, 201)) -> httpx.Response:
        attempts = max(1, self.settings.attempts)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._http.request(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                if last:
                    raise GitHubError(f"cannot reach GitHub at {self.settings.api_url}: {exc}") from None
                self._sleep(self.settings.backoff * 2**attempt)
                continue
            if response.status_code >= 500 and not last:
                self._sleep(self.settings.backoff * 2**attempt)
                continue
            if response.status_code in ok or response.status_code == 422:
                return response
            raise self._error(method, path, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, method: str, path: str, response: httpx.Response) -> GitHubError:
        message = _message(response)
        status = response.status_code
        if status == 401:
            return GitHubError(f"GitHub refused the token ({status} {message})", hint="GITHUB_TOKEN is wrong or expired")
        if status == 403:
            return GitHubError(
                f"GitHub denied {method} {path} ({status} {message})",
                hint="the token needs `pull-requests: write` and `contents: write` (issues: `issues: write`; a dispatch: `actions: write`), "
                     "or the repo scope; or a rate limit was hit",
            )
        if status == 404:
            return GitHubError(
                f"GitHub answered 404 for {method} {path}",
                hint=f"check GITHUB_REPOSITORY ({self.settings.repository}) and that the token can see it",
            )
        if status >= 500:
            return GitHubError(f"GitHub failed {self.settings.attempts} times on {method} {path} (last: {status} {message})")
        return GitHubError(f"GitHub answered {status} to {method} {path}: {message}")

    # --- pull requests -----------------------------------------------------------------------

    def find_pull_request(self, head: str) -> PullRequest | None:
        """The open pull request from branch `head` of this repository, if any."""
        response = self._request(
            "GET", f"{self._repo_path}/pulls", params={"head": f"{self.settings.owner}:{head}", "state": "open", "per_page": 100}
        )
        if response.status_code == 422:
            raise self._error("GET", f"{self._repo_path}/pulls", response)
        for item in response.json():
            if item.get("head", {}).get("ref") == head:
                return _pull(item)
        return None

    def create_pull_request(self, *, head: str, base: str, title: str, body: str) -> tuple[PullRequest, bool]:
        """Open a pull request, or update the one already open from head; (pr, created)."""
        response = self._request(
            "POST", f"{self._repo_path}/pulls", json={"title": title, "head": head, "base": base, "body": body, "maintainer_can_modify": True}
        )
        if response.status_code == 201:
            return _pull(response.json()), True
        if _already_exists(response):
            existing = self.find_pull_request(head)
            if existing is not None:
                return self.update_pull_request(existing.number, title=title, body=body), False
        raise self._error("POST", f"{self._repo_path}/pulls", response)

    def update_pull_request(self, number: int, *, title: str, body: str) -> PullRequest:
        response = self._request("PATCH", f"{self._repo_path}/pulls/{number}", json={"title": title, "body": body})
        if response.status_code == 422:
            raise self._error("PATCH", f"{self._repo_path}/pulls/{number}", response)
        return _pull(response.json())

    def open_or_update(self, *, head: str, base: str, title: str, body: str) -> tuple[PullRequest, bool]:
        """Re-running the same edit updates its pull request instead of opening another."""
        existing = self.find_pull_request(head)
        if existing is not None:
            return self.update_pull_request(existing.number, title=title, body=body), False
        return self.create_pull_request(head=head, base=base, title=title, body=body)

    # --- the one comment -----------------------------------------------------------------------

    def token_login(self) -> str | None:
        """The login the token acts as, or None when GitHub will not say: GitHub Actions
        installation tokens get 403 on GET /user."""
        if not self._login_asked:
            response = self._request("GET", "/user", ok=(200, 403, 404))
            data = response.json() if response.status_code == 200 else {}
            login = data.get("login") if isinstance(data, dict) else None
            self._login = str(login) if login else None
            self._login_asked = True
        return self._login

    def _is_own(self, item: Mapping[str, Any], marker: str, login: str | None) -> bool:
        # a person quoting or pasting the comment also has the marker in the body: only a comment
        # that starts with it and that this token's identity wrote is ours; with no identity
        # (an Actions token) only a bot can have written it
        if not str(item.get("body") or "").startswith(marker):
            return False
        author = item.get("user") or {}
        if login is not None:
            return bool(author.get("login") == login)
        return bool(author.get("type") == "Bot")

    def upsert_comment(self, number: int, marker: str, body: str) -> tuple[Comment, bool]:
        """Create or update the single comment on issue/PR `number` that starts with `marker` and
        that this token wrote; (comment, created). The marker is an HTML comment, invisible on GitHub."""
        text, cut = fit_comment(body if body.startswith(marker) else f"{marker}\n{body}")
        login = self.token_login()
        page = 1
        while True:
            response = self._request(
                "GET", f"{self._repo_path}/issues/{number}/comments", params={"per_page": 100, "page": page}
            )
            items = response.json()
            for item in items:
                if self._is_own(item, marker, login):
                    updated = self._request(
                        "PATCH", f"{self._repo_path}/issues/comments/{item['id']}", json={"body": text}
                    )
                    if updated.status_code == 422:
                        raise self._error("PATCH", f"{self._repo_path}/issues/comments/{item['id']}", updated)
                    data = updated.json()
                    return Comment(int(data["id"]), data.get("html_url", ""), cut), False
            if len(items) < 100:
                break
            page += 1
        created = self._request("POST", f"{self._repo_path}/issues/{number}/comments", json={"body": text})
        if created.status_code != 201:
            raise self._error("POST", f"{self._repo_path}/issues/{number}/comments", created)
        data = created.json()
        return Comment(int(data["id"]), data.get("html_url", ""), cut), True


    # --- issues and workflow dispatches ---------------------------------------------------------

    def get_issue(self, number: int) -> Issue:
        """Issue `number` of this repository (404: a GitHubError naming it)."""
        response = self._request("GET", f"{self._repo_path}/issues/{number}", ok=(200,))
        if response.status_code == 422:
            raise self._error("GET", f"{self._repo_path}/issues/{number}", response)
        return _issue(response.json())

    def find_issue(self, label: str, marker: str) -> Issue | None:
        """The open issue labelled `label` whose body starts with `marker` and that this token's
        identity (or, with an Actions token, a bot) opened; pull requests are not issues here."""
        login = self.token_login()
        page = 1
        while True:
            response = self._request(
                "GET", f"{self._repo_path}/issues", params={"labels": label, "state": "open", "per_page": 100, "page": page}, ok=(200,)
            )
            if response.status_code == 422:
                raise self._error("GET", f"{self._repo_path}/issues", response)
            items = response.json()
            for item in items:
                if "pull_request" not in item and self._is_own(item, marker, login):
                    return _issue(item)
            if len(items) < 100:
                return None
            page += 1

    def create_issue(self, *, title: str, body: str, labels: tuple[str, ...]) -> Issue:
        text, _ = fit_comment(body, note=ISSUE_CUT_NOTE)
        response = self._request("POST", f"{self._repo_path}/issues", json={"title": title, "body": text, "labels": list(labels)}, ok=(201,))
        if response.status_code != 201:
            raise self._error("POST", f"{self._repo_path}/issues", response)
        return _issue(response.json())

    def update_issue(self, number: int, *, title: str, body: str) -> Issue:
        text, _ = fit_comment(body, note=ISSUE_CUT_NOTE)
        response = self._request("PATCH", f"{self._repo_path}/issues/{number}", json={"title": title, "body": text}, ok=(200,))
        if response.status_code == 422:
            raise self._error("PATCH", f"{self._repo_path}/issues/{number}", response)
        return _issue(response.json())

    def dispatch_workflow(self, workflow: str, *, ref: str, inputs: Mapping[str, str]) -> None:
        """Start a run of `workflow` (its file name, e.g. gitops-ml-retrain.yml) on `ref` with
        `inputs`; GitHub answers 204 and starts it a moment later."""
        path = f"{self._repo_path}/actions/workflows/{workflow}/dispatches"
        try:
            response = self._request("POST", path, json={"ref": ref, "inputs": dict(inputs)}, ok=(204,))
        except GitHubError as exc:
            if "404" in exc.message:
                exc.hint = f"is there a .github/workflows/{workflow} on {ref}? (`gitops-ml init` writes gitops-ml-retrain.yml); the token needs `actions: write`"
            raise
        if response.status_code != 204:
            raise self._error("POST", path, response)


ISSUE_CUT_NOTE = "_… cut to fit GitHub's 65,536-character limit; run `gitops-ml monitor` locally for the whole report._"


def _issue(item: Mapping[str, Any]) -> Issue:
    return Issue(int(item["number"]), str(item.get("html_url", "")), str(item.get("title") or ""), str(item.get("body") or ""))


def _pull(item: Mapping[str, Any]) -> PullRequest:
    return PullRequest(
        number=int(item["number"]),
        url=str(item.get("html_url", "")),
        head=str((item.get("head") or {}).get("ref", "")),
        base=str((item.get("base") or {}).get("ref", "")),
    )


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase or "no message"
    if not isinstance(data, dict):
        return response.reason_phrase or "no message"
    parts = [str(data.get("message", ""))]
    for err in data.get("errors") or []:
        if isinstance(err, dict) and err.get("message"):
            parts.append(str(err["message"]))
    return ": ".join(p for p in parts if p) or response.reason_phrase


def _already_exists(response: httpx.Response) -> bool:
    return response.status_code == 422 and "already exists" in _message(response).lower()


def default_settings(origin_url: str | None) -> GitHubSettings:
    """Settings from this process's environment (read when called, never at import)."""
    return settings_from_env(os.environ, origin_url)
