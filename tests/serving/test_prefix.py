"""An endpoint exposed under a path prefix (exposure.path: /iris) answers under it whether or not the
proxy strips the prefix, and its /docs and /swagger.json say the public paths. `gitops-ml serve --env`
applies the deployment file's prefix as the image does, and says loudly when it serves without the
auth the deployment file asks for."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin

import httpx
from support import model_version

from tests.serving.conftest import EXAMPLES, KEY, START_DEADLINE, Server, free_port


def test_a_prefixed_endpoint_answers_with_and_without_the_prefix(start_server) -> None:
    server = start_server(EXAMPLES / "iris", path_prefix="/iris")
    sample = json.loads((EXAMPLES / "iris" / "sample.json").read_text())
    for path in ("/iris/score", "/score", "/iris/v1/score"):  # a proxy that keeps the prefix, one that strips it
        answer = server.post(sample, path=path)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json() == {"predictions": [0, 1, 2]}
    assert server.get("/iris/healthz").status_code == 200 and server.get("/healthz").status_code == 200
    assert server.get("/iris").json()["score"] == "/iris/score"
    assert server.post(sample, path="/irises/score").status_code == 404, "a prefix matches whole path segments"
    for path in ("/iris/swagger.json", "/swagger.json"):
        document = server.get(path).json()
        assert document["servers"] == [{"url": "/iris", "description": "The endpoint's path prefix"}]
        assert "/score" in document["paths"]


def test_the_docs_page_links_work_under_the_prefix_and_behind_a_rewriting_proxy(start_server) -> None:
    server = start_server(EXAMPLES / "iris", path_prefix="/iris")
    for page_path in ("/iris/docs", "/docs"):
        text = server.get(page_path).text
        (target,) = re.findall(r'<body data-score="([^"]*)">', text)
        (document,) = re.findall(r'<a href="([^"]*)"><code>/iris/swagger.json</code></a>', text)
        assert "curl -sS -X POST http://HOST/iris/score" in html.unescape(text)
        # as the browser resolves them: against the URL it shows (/iris/docs), whether the proxy
        # forwarded that or stripped it to /docs
        shown = server.url + "/iris/docs"
        score_url = urljoin(shown, target)
        assert score_url == server.url + "/iris/score"
        assert httpx.get(urljoin(shown, document), timeout=10).json()["servers"][0]["url"] == "/iris"
        sample = (EXAMPLES / "iris" / "sample.json").read_bytes()
        answer = httpx.post(
            score_url,
            content=sample,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
            timeout=30,
        )
        assert answer.status_code == 200


def test_an_endpoint_without_a_prefix_keeps_its_document_as_it_was(start_server) -> None:
    server = start_server(EXAMPLES / "iris")
    assert "servers" not in server.get("/swagger.json").json()
    assert (
        server.post(json.loads((EXAMPLES / "iris" / "sample.json").read_text()), path="/iris/score").status_code == 404
    )


def _repo(tmp_path: Path, path: str) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES.parent, repo, ignore=shutil.ignore_patterns("deploy"))
    deployment = repo / "deployments" / "staging" / "iris.yaml"
    deployment.write_text(deployment.read_text().replace("  path: /\n", f"  path: {path}\n"))
    return repo


def test_serve_env_applies_the_prefix_and_warns_loudly_when_auth_is_off(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "/ml/iris")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_ML_") or k == "GITOPS_ML_ENV_MANAGER"}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    out, err = tmp_path / "serve.out", tmp_path / "serve.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gitops_ml", "serve", "models/iris", "--env", "staging", "--port", str(port)],
            cwd=repo,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    server = Server(process, f"http://127.0.0.1:{port}", out, err, tmp_path, headers={})
    try:
        server.wait_until(lambda: server.get("/readyz").status_code == 200, "readiness", START_DEADLINE)
        sample = json.loads((repo / "models" / "iris" / "sample.json").read_text())
        assert server.post(sample, path="/ml/iris/score").json() == {"predictions": [0, 1, 2]}
        log = err.read_text()
        assert (
            "warning: deployments/staging/iris.yaml sets auth.mode: secret, but no key was given: serving WITHOUT AUTH on 127.0.0.1"
            in log
        ), log
        assert f"serving iris {model_version('iris')} on http://127.0.0.1:{port}/ml/iris (auth OFF" in log
        assert "POST /ml/iris/score" in log
    finally:
        assert server.stop() == 0, server.log()
