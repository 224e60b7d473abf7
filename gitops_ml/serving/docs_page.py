"""The endpoint's documentation page (/docs): built once from the OpenAPI document, self-contained.

No CDN, no framework: one HTML document with its inputs table, the sample as an editable request, a
"Score" button that calls the endpoint from the browser with the key the reader types, and the curl
command to repeat it. The inline script and style are allowed by hash in the Content-Security-Policy,
so nothing else can run on the page. Pure: the OpenAPI dict in, (body, CSP header) out.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from string import Template
from typing import Any, Mapping

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d1d1f}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.1rem;margin-top:2rem}
.sub{color:#555;margin-top:0}code,pre,textarea,input{font:13px/1.4 ui-monospace,monospace}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
pre{background:#f5f5f7;padding:.75rem;overflow:auto;white-space:pre-wrap;word-break:break-all}
textarea{width:100%;min-height:10rem;box-sizing:border-box}input{width:28rem;max-width:100%}
button{font-size:14px;padding:.35rem 1rem;margin-top:.5rem}.status{font-weight:600}
"""

_SCRIPT = """
(function () {
  var button = document.getElementById("score"), out = document.getElementById("response");
  var status = document.getElementById("status"), key = document.getElementById("key");
  button.addEventListener("click", function () {
    var headers = {"Content-Type": "application/json"};
    if (key && key.value) { headers["Authorization"] = "Bearer " + key.value; }
    var started = performance.now();
    status.textContent = "…"; out.textContent = "";
    fetch(document.body.dataset.score, {method: "POST", headers: headers, body: document.getElementById("body").value})
      .then(function (r) {
        return r.text().then(function (text) {
          var ms = (performance.now() - started).toFixed(1);
          status.textContent = "HTTP " + r.status + " in " + ms + " ms, request id " + (r.headers.get("X-Request-Id") || "-");
          try { out.textContent = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { out.textContent = text; }
        });
      })
      .catch(function (e) { status.textContent = "failed: " + e; });
  });
})();
"""

_PAGE = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>$style</style>
</head>
<body data-score="$score_link">
<h1>$title</h1>
<p class="sub">$description</p>
<h2>Inputs</h2>
$inputs
<h2>Try it</h2>
<p><code>POST $score_path</code> with a JSON body. $auth_text</p>
$key_field
<textarea id="body" spellcheck="false" aria-label="request body">$sample</textarea>
<button id="score" type="button">Score</button>
<p id="status" class="status" role="status"></p>
<pre id="response" aria-label="response"></pre>
<h2>From a shell</h2>
<pre>$curl</pre>
$protocols
<h2>Routes</h2>
<table><thead><tr><th>Route</th><th>What it answers</th></tr></thead><tbody>
$routes
</tbody></table>
<p>The whole contract, with every error status: <a href="$openapi_link"><code>$openapi_path</code></a> (OpenAPI 3.1).</p>
<script>$script</script>
</body>
</html>
""")


def render_docs(openapi: Mapping[str, Any], *, score_path: str, openapi_path: str, prefix: str = "") -> tuple[bytes, bytes]:
    """The page and its Content-Security-Policy header value.

    Its links and the form's target are relative to the page (`score`, `swagger.json`), so they hold
    whether the page is reached as /docs or under the endpoint's prefix (/iris/docs), rewritten by a
    proxy or not; the curl command shows the public path, `prefix` + `score_path`.
    """
    info = openapi.get("info", {})
    operation = openapi.get("paths", {}).get(score_path, {}).get("post", {})
    media = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    auth = bool(operation.get("security"))
    sample = json.dumps(media.get("example", {}), indent=2)
    key_field = '<p><label>API key <input id="key" type="password" autocomplete="off"></label></p>' if auth else ""
    auth_text = "Send the key as <code>Authorization: Bearer KEY</code> or <code>X-Api-Key: KEY</code>." if auth else "This endpoint does not ask for a key."
    curl = f"curl -sS -X POST http://HOST{prefix}{score_path} -H 'Content-Type: application/json'"
    curl += " -H 'Authorization: Bearer KEY'" if auth else ""
    curl += " --data @sample.json"
    protocols = _protocol_lines(openapi, prefix, auth)
    page = _PAGE.substitute(
        title=html.escape(str(info.get("title", "scoring endpoint"))),
        description=html.escape(str(info.get("description", ""))),
        style=_STYLE,
        script=_SCRIPT,
        score_path=html.escape(prefix + score_path),
        score_link=html.escape(score_path.lstrip("/")),
        openapi_path=html.escape(prefix + openapi_path),
        openapi_link=html.escape(openapi_path.lstrip("/")),
        inputs=_inputs_table(media.get("schema", {})),
        auth_text=auth_text,
        key_field=key_field,
        sample=html.escape(sample),
        curl=html.escape(curl),
        protocols=protocols,
        routes="\n".join(
            f"<tr><td><code>{html.escape(method.upper())} {html.escape(prefix + path)}</code></td><td>{html.escape(str(op.get('summary', '')))}</td></tr>"
            for path, methods in openapi.get("paths", {}).items()
            for method, op in methods.items()
        ),
    )
    policy = (
        f"default-src 'none'; script-src {_hash(_SCRIPT)}; style-src {_hash(_STYLE)}; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return page.encode(), policy.encode()


def _protocol_lines(openapi: Mapping[str, Any], prefix: str, auth: bool) -> str:
    """The inference protocols' curl commands (Open Inference Protocol, KServe V1) with the sample as
    their body, or '' when the document has no such routes."""
    lines = []
    for path, methods in openapi.get("paths", {}).items():
        if not (path.startswith("/v2/models/") and path.endswith("/infer") and "{" not in path) and not path.endswith(":predict"):
            continue
        media = methods.get("post", {}).get("requestBody", {}).get("content", {}).get("application/json", {})
        example = json.dumps(media.get("example", {}), separators=(",", ":")).replace("'", "'\\''")
        name = "Open Inference Protocol (v2; Triton's and MLServer's clients)" if path.endswith("/infer") else "KServe V1"
        curl = f"curl -sS -X POST http://HOST{prefix}{path} -H 'Content-Type: application/json'"
        curl += " -H 'Authorization: Bearer KEY'" if auth else ""
        curl += f" --data '{example}'"
        lines.append(f"<p>{html.escape(name)}:</p>\n<pre>{html.escape(curl)}</pre>")
    if not lines:
        return ""
    return "<h2>Inference protocols</h2>\n<p>The same model, keys and limits, for clients that speak KServe's or Triton's protocols.</p>\n" + "\n".join(lines)


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _inputs_table(schema: Mapping[str, Any]) -> str:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        kind = schema.get("type", "any JSON")
        return f"<p>The body is {html.escape(str(kind))}; the example below is the model's sample.</p>"
    required = set(schema.get("required", ()))
    rows = [
        f"<tr><td><code>{html.escape(name)}</code></td><td>{'yes' if name in required else 'no'}</td>"
        f"<td>{html.escape(_describe(spec))}</td></tr>"
        for name, spec in properties.items()
    ]
    return "<table><thead><tr><th>Input</th><th>Required</th><th>Expected</th></tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>"


def _describe(spec: Any) -> str:
    """One line a person reads: what `gitops-ml schema generate` knows about the input."""
    if not isinstance(spec, Mapping):
        return "any JSON"
    hint = spec.get("x-gitops-ml") or {}
    kind = hint.get("kind")
    if kind == "ndarray":
        shape = ", ".join("n" if d is None else str(d) for d in hint.get("shape", []))
        return f"array of {hint.get('dtype', 'numbers')}, shape ({shape})"
    if kind == "dataframe":
        columns = hint.get("columns") or {}
        listed = ", ".join(f"{c}: {t}" for c, t in columns.items()) if isinstance(columns, Mapping) else ", ".join(map(str, columns))
        return f"table ({hint.get('orient', 'records')} orientation) with columns {listed}"
    if kind == "binary":
        return f"base64 {hint.get('media_type', 'bytes')}, at most {hint.get('max_bytes', '?')} bytes"
    text = str(spec.get("type", "any JSON"))
    if spec.get("description"):
        text += f": {spec['description']}"
    return text
