"""What a caller sees from a real server (uvicorn on 127.0.0.1): answers, error bodies naming the
field, auth, key reload, metrics, access log, OpenAPI."""

from __future__ import annotations

import base64
import io
import json
import os

import httpx
import pytest

from tests.serving.conftest import EXAMPLES, KEY, SECOND_KEY, Server, ServerPool


@pytest.fixture(scope="module")
def iris(module_servers: ServerPool) -> Server:
    return module_servers.start(EXAMPLES / "iris", max_body_bytes=4096)


@pytest.fixture(scope="module")
def digits(module_servers: ServerPool) -> Server:
    return module_servers.start(
        EXAMPLES / "digits", batch_enabled=True, batch_max_size=16, max_concurrent=2, queue_size=64
    )


def sample(name: str) -> dict:
    return json.loads((EXAMPLES / name / "sample.json").read_text())


def test_sample_is_scored(iris: Server) -> None:
    response = iris.post(sample("iris"), headers={"X-Request-Id": "req-123"})
    assert response.status_code == 200
    assert response.json() == {"predictions": [0, 1, 2]}
    assert response.headers["x-request-id"] == "req-123"
    assert response.headers["x-model-version"] == "1.2.3"
    assert iris.post(sample("iris"), path="/v1/score").json() == {"predictions": [0, 1, 2]}


@pytest.mark.parametrize(
    ("content", "content_type", "status", "error", "text"),
    [
        (b'{"data": [[1, 2, 3, 4]', "application/json", 400, "invalid_json", "malformed JSON"),
        (b"", "application/json", 400, "empty_body", "empty"),
        (b'{"data": [[1, 2, 3, 4]]}', "text/plain", 415, "unsupported_media_type", "application/json"),
        (b'{"data": [[1, NaN, 3, 4]]}', "application/json", 400, "invalid_json", "NaN is not allowed"),
        (b'{"data": [[1, 2, 3, Infinity]]}', "application/json", 400, "invalid_json", "Infinity is not allowed"),
        (b'{"data": [[1e999, 2, 3, 4]]}', "application/json", 400, "invalid_json", "malformed JSON"),
        (b"[[1, 2, 3, 4]]", "application/json", 422, "invalid_input", "JSON object of named inputs"),
    ],
)
def test_unreadable_bodies(iris: Server, content: bytes, content_type: str, status: int, error: str, text: str) -> None:
    response = iris.post(content=content, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert text in body["message"]
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"data": [[1, 2, "x", 4]]}, "data[0][2]", "expected numbers, got a string"),
        ({"data": [[1, 2, None, 4]]}, "data[0][2]", "got null"),
        ({"data": [[1, 2, 3]]}, "data", "expected shape (n, 4), got (1, 3)"),
        ({"data": [1, 2, 3, 4]}, "data", "expected shape (n, 4), got (4,)"),
        ({"data": [[1, 2, 3, 4], [1, 2]]}, "data", "rows have different lengths"),
        ({"data": []}, "data", "expected shape"),
        ({"data": "1,2,3,4"}, "data", "expected an array"),
        ({}, "data", "missing input 'data'"),
        ({"data": [[1, 2, 3, 4]], "extra": 1}, "extra", "unknown input 'extra'"),
    ],
)
def test_inputs_that_do_not_fit_name_the_field(iris: Server, body: dict, field: str, message: str) -> None:
    response = iris.post(body)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["error"] == "invalid_input"
    assert answer["field"] == field
    assert message in answer["message"]
    assert "(n, 4)" in answer["expected"] or field == "extra"


def test_body_over_the_limit_is_413(iris: Server) -> None:
    rows = [[5.1, 3.5, 1.4, 0.2]] * 400  # about 8 KB, over the 4 KB limit set for this server
    response = iris.post({"data": rows})
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def test_keys(iris: Server) -> None:
    missing = iris.post(sample("iris"), headers={"Authorization": ""})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "missing key" in missing.json()["message"]
    wrong = iris.post(sample("iris"), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "wrong key" in wrong.json()["message"]
    assert iris.post(sample("iris"), headers={"Authorization": f"Bearer {SECOND_KEY}"}).status_code == 200
    assert iris.post(sample("iris"), headers={"Authorization": "", "X-Api-Key": KEY}).status_code == 200
    # health, metrics and the API document need no key (probes and scrapers carry none)
    for path in ("/healthz", "/readyz", "/metrics", "/swagger.json", "/docs"):
        assert iris.get(path).status_code == 200


def test_keys_reload_without_restart(start_server) -> None:
    server = start_server(EXAMPLES / "iris")
    rotated = "rotated-key"
    # Kubernetes updates a Secret volume by swapping a symlink; a rename gives the same new inode
    tmp = server.keys_dir / ".primary.new"
    tmp.write_text(rotated)
    os.replace(tmp, server.keys_dir / "primary")
    new_key = {"Authorization": f"Bearer {rotated}"}
    server.wait_until(
        lambda: server.post(sample("iris"), headers=new_key).status_code == 200, "the rotated key", deadline=10
    )
    assert server.post(sample("iris")).status_code == 401  # the old primary key is gone
    log = server.log()
    assert rotated not in log and KEY not in log


def test_access_log_and_metrics(iris: Server) -> None:
    response = iris.post({"data": [[5.987654, 3.5, 1.4, 0.2]]}, headers={"X-Request-Id": "logged-request"})
    assert response.status_code == 200
    iris.wait_until(lambda: "logged-request" in iris.stdout.read_text(), "the access-log line", deadline=10)
    line = next(json.loads(l) for l in iris.stdout.read_text().splitlines() if "logged-request" in l)
    assert line["status"] == 200 and line["model"] == "iris" and line["version"] == "1.2.3"
    assert line["latency_ms"] >= 0 and line["path"] == "/score"
    assert KEY not in iris.log() and "5.987654" not in iris.log()  # no keys, no payloads
    metrics = iris.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert iris.metric('gitops_ml_requests_total{route="score",status="200"}') >= 1
    assert iris.metric('gitops_ml_model_info{model="iris",version="1.2.3"}') == 1
    assert iris.metric("gitops_ml_request_duration_seconds_count") >= 1
    assert iris.metric('gitops_ml_rejected_total{reason="unauthorized"}') >= 0
    for name in ("gitops_ml_in_flight", "gitops_ml_queue_depth", "gitops_ml_ready", "gitops_ml_batch_size_bucket"):
        assert name in metrics.text
    # the name an HPA on in-flight requests is rendered with is one the server really exports
    from gitops_ml.serving.settings import IN_FLIGHT_METRIC

    assert f"\n{IN_FLIGHT_METRIC}{{" in metrics.text
    # every family carries the version, so a canary and the stable version are told apart
    samples = [line for line in metrics.text.splitlines() if line and not line.startswith("#")]
    assert samples and all('version="1.2.3"' in line and 'model="iris"' in line for line in samples)


def test_openapi_document(iris: Server) -> None:
    doc = iris.get("/swagger.json").json()
    assert doc["openapi"] == "3.1.0"
    body = doc["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]
    assert body["example"] == sample("iris")
    assert body["schema"]["properties"]["data"]["x-gitops-ml"]["kind"] == "ndarray"
    assert {"bearer", "apiKey"} <= set(doc["components"]["securitySchemes"])


def test_docs_page_is_self_contained(iris: Server, digits: Server) -> None:
    import hashlib
    import html
    import re

    page = iris.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    text = page.text
    assert "<title>iris scoring endpoint</title>" in text
    assert "<code>data</code>" in text and "array of float64, shape (n, 4)" in text
    assert 'id="key" type="password"' in text, "an endpoint with keys asks for one"
    (body,) = re.findall(r'<textarea id="body"[^>]*>(.*?)</textarea>', text, re.S)
    assert json.loads(html.unescape(body)) == sample("iris"), "the sample is the editable request"
    assert "Authorization: Bearer KEY" in text and "/swagger.json" in text
    assert not re.search(r'(src|href)="(https?:)?//', text), "nothing is loaded from another origin"
    # the browser runs the inline script and style only because the policy names their hashes
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    for tag in ("script", "style"):
        (inline,) = re.findall(rf"<{tag}>(.*?)</{tag}>", text, re.S)
        digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in policy
    assert "base64 image/png, at most 1048576 bytes" in digits.get("/docs").text


_PAGE_DRIVER = """
const elements = {};
const element = (id) => elements[id] || (elements[id] = {id, value: "", textContent: "", listeners: {},
  addEventListener(kind, fn) { this.listeners[kind] = fn; }});
const page = JSON.parse(process.argv[process.argv.length - 1]);
globalThis.document = {getElementById: element, body: {dataset: {score: page.url}}};
element("body").value = page.body;
element("key").value = page.key;
new Function(page.script)();
element("score").listeners.click();
const poll = setInterval(() => {
  if (elements.status.textContent.startsWith("HTTP") || elements.status.textContent.startsWith("failed")) {
    clearInterval(poll);
    console.log(JSON.stringify({status: elements.status.textContent, response: elements.response.textContent}));
  }
}, 10);
"""


@pytest.mark.parametrize("key", [KEY, "wrong"])
def test_docs_page_script_scores_against_the_server(iris: Server, key: str) -> None:
    """The page's own script, run by node with the browser's fetch, scores the sample it shows."""
    import html
    import re
    import shutil
    import subprocess

    from support import require

    require(shutil.which("node") is not None, "node runs the /docs page's script (apt-get install nodejs)")
    text = iris.get("/docs").text
    (script,) = re.findall(r"<script>(.*?)</script>", text, re.S)
    (body,) = re.findall(r'<textarea id="body"[^>]*>(.*?)</textarea>', text, re.S)
    page = {"url": iris.url + "/score", "body": html.unescape(body), "key": key, "script": script}
    run = subprocess.run(
        ["node", "-e", _PAGE_DRIVER, json.dumps(page)], capture_output=True, text=True, timeout=30, check=False
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    if key == KEY:
        assert result["status"].startswith("HTTP 200 in ") and "request id " in result["status"]
        assert json.loads(result["response"]) == {"predictions": [0, 1, 2]}
    else:
        assert result["status"].startswith("HTTP 401")
        assert json.loads(result["response"])["error"] == "unauthorized"


def png(size: tuple[int, int] = (8, 8)) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", size, color=128).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_digits_binary_and_json_inputs(digits: Server) -> None:
    answer = digits.post(sample("digits"))
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["top"]) == 3
    bad = [
        ({"image": "not base64!!", "options": {"top_k": 1}}, 422, "image", "not valid base64"),
        (
            {"image": base64.b64encode(b"GIF89a....").decode(), "options": {"top_k": 1}},
            422,
            "image",
            "expected image/png",
        ),
        ({"image": png(), "options": {"top_k": "3"}}, 422, "options.top_k", "expected integer"),
        ({"image": png(), "options": {}}, 422, "options.top_k", "missing 'top_k'"),
        ({"image": png((1200, 1200)) + "A" * 1_500_000, "options": {"top_k": 1}}, 413, "image", "over the limit"),
        ({"options": {"top_k": 1}}, 422, "image", "missing input 'image'"),
    ]
    for body, status, field, message in bad:
        response = digits.post(body)
        assert response.status_code == status, (body.get("options"), response.text)
        assert response.json()["field"] == field
        assert message in response.json()["message"]


def test_digits_png_signature_but_broken_image_is_refused_by_score_py(digits: Server) -> None:
    broken = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40).decode()
    response = digits.post({"image": broken, "options": {"top_k": 1}})
    assert response.status_code == 422
    assert response.json()["field"] == "image"


def test_batching_answers_each_caller(digits: Server) -> None:
    import concurrent.futures

    bodies = [{"image": png(), "options": {"top_k": k}} for k in range(1, 9)] * 4
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda b: digits.post(b), bodies))
    assert all(a.status_code == 200 for a in answers)
    assert [len(a.json()["top"]) for a in answers] == [b["options"]["top_k"] for b in bodies]
    assert digits.metric("gitops_ml_batch_size_count") >= 1
    assert digits.metric("gitops_ml_batch_size_sum") >= len(bodies)


def test_wrong_method_and_unknown_route(iris: Server) -> None:
    assert httpx.get(iris.url + "/score").status_code == 405
    missing = httpx.get(iris.url + "/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_integers_beyond_64_bits_are_numbers(iris: Server) -> None:
    response = iris.post(content=b'{"data": [[100000000000000000000000, 3.5, 1.4, 0.2]]}')
    assert response.status_code == 200, response.text


def test_digits_refuses_huge_images_and_decompression_bombs_alone(digits: Server) -> None:
    from PIL import Image

    def png_of(size: tuple[int, int]) -> str:
        buffer = io.BytesIO()
        Image.new("1", size).save(buffer, format="PNG", optimize=True)
        return base64.b64encode(buffer.getvalue()).decode()

    big = digits.post({"image": png_of((2000, 8)), "options": {"top_k": 1}})
    assert big.status_code == 422 and "more than 1024 on a side" in big.json()["message"]
    bomb = png_of((14000, 14000))  # ~25 KB of PNG, 196 million pixels
    assert len(bomb) < 100_000
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda i: digits.post({"image": bomb, "options": {"top_k": 1}} if i == 0 else sample("digits")),
                range(8),
            )
        )
    assert answers[0].status_code == 422
    assert [a.status_code for a in answers[1:]] == [200] * 7, "the neighbours of the bomb in its batch are scored"
