"""`gitops-ml schema generate`, `gitops-ml call`, `gitops-ml serve` errors, the Python client, and
schema inference from Python objects."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from gitops_ml.adapters.endpoint import ScoringError, score
from gitops_ml.cli.main import cli
from gitops_ml.serving import infer_schema
from tests.serving.conftest import EXAMPLES, KEY, free_port


def test_schema_generate_reproduces_the_examples(tmp_path: Path) -> None:
    for model in ("iris", "digits"):
        out = tmp_path / f"{model}.json"
        result = CliRunner().invoke(
            cli, ["schema", "generate", "--sample", str(EXAMPLES / model / "sample.json"), "-o", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert out.read_text() == (EXAMPLES / model / "schema.json").read_text()


def test_schema_generate_refuses_a_bare_array(tmp_path: Path) -> None:
    sample = tmp_path / "sample.json"
    sample.write_text("[[1, 2, 3, 4]]")
    result = CliRunner().invoke(cli, ["schema", "generate", "--sample", str(sample)])
    assert result.exit_code == 1
    assert "named inputs" in result.output and "Traceback" not in result.output


def test_inference_from_python_objects() -> None:
    frame = pd.DataFrame({"age": [31, 40], "income": [1.5, 2.5], "city": ["a", "b"]})
    schema = infer_schema(
        {
            "x": np.zeros((2, 3, 2), dtype=np.float32),
            "table": frame,
            "blob": b"\x89PNG\r\n\x1a\n...",
            "meta": {"k": [1, 2]},
        }
    )
    props = schema["properties"]
    assert props["x"]["x-gitops-ml"] == {"kind": "ndarray", "dtype": "float32", "shape": [None, 3, 2]}
    assert props["table"]["x-gitops-ml"] == {
        "kind": "dataframe",
        "orient": "records",
        "columns": {"age": "int64", "income": "float64", "city": "object"},
    }
    assert props["blob"]["x-gitops-ml"]["kind"] == "binary" and props["blob"]["contentMediaType"] == "image/png"
    assert props["meta"]["x-gitops-ml"] == {"kind": "json"}
    split = infer_schema({"t": {"columns": ["a", "b"], "data": [[1, 2.5], [3, 4.5]]}})["properties"]["t"]
    assert split["x-gitops-ml"] == {"kind": "dataframe", "orient": "split", "columns": {"a": "int64", "b": "float64"}}


def test_dataframe_inputs_are_decoded_by_the_server(start_server, tmp_path: Path) -> None:
    model = tmp_path / "table"
    model.mkdir()
    (model / "score.py").write_text(
        "def run(frame):\n    return {'dtypes': {c: str(t) for c, t in frame.dtypes.items()}, 'rows': len(frame)}\n"
    )
    (model / "schema.json").write_text(json.dumps(infer_schema({"rows": [{"a": 1, "b": 2.5}]})))
    server = start_server(model)
    answer = server.post({"rows": [{"a": 1, "b": 2}, {"a": 3, "b": 4.5}]})
    assert answer.json() == {"dtypes": {"a": "int64", "b": "float64"}, "rows": 2}
    bad = server.post({"rows": [{"a": 1.5, "b": 2}]})
    assert bad.status_code == 422 and bad.json()["field"] == "rows.a"
    missing = server.post({"rows": [{"a": 1}]})
    assert missing.status_code == 422 and missing.json()["field"] == "rows[0].b"


def test_call_prints_the_answer_and_fails_cleanly(start_server) -> None:
    server = start_server(EXAMPLES / "iris")
    sample = EXAMPLES / "iris" / "sample.json"
    ok = CliRunner().invoke(cli, ["call", server.url, "--key", KEY, "--data", f"@{sample}"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout) == {"predictions": [0, 1, 2]}
    denied = CliRunner().invoke(cli, ["call", server.url, "--key", "wrong", "--data", f"@{sample}"])
    assert denied.exit_code == 1 and "401" in denied.output and "Traceback" not in denied.output
    bad = CliRunner().invoke(cli, ["call", server.url, "--key", KEY, "--data", '{"data": [[1, 2]]}'])
    assert bad.exit_code == 1 and "field data" in bad.output
    assert score(server.url + "/score", {"data": np.array([[5.1, 3.5, 1.4, 0.2]])}, key=KEY).data == {
        "predictions": [0]
    }
    with pytest.raises(ScoringError) as err:
        score(server.url, {"data": [[1, 2, 3, 4]]})
    assert err.value.status == 401


def test_call_and_serve_refuse_bad_arguments(tmp_path: Path) -> None:
    not_json = CliRunner().invoke(cli, ["call", "http://127.0.0.1:9", "--data", "{nope"])
    assert not_json.exit_code == 2 and "not JSON" in not_json.output
    no_file = CliRunner().invoke(cli, ["call", "http://127.0.0.1:9", "--data", "@/nonexistent.json"])
    assert no_file.exit_code == 2 and "cannot read" in no_file.output
    no_dir = CliRunner().invoke(cli, ["serve", str(tmp_path / "missing")])
    assert no_dir.exit_code == 2 and "not a directory" in no_dir.output
    public = CliRunner().invoke(cli, ["serve", str(EXAMPLES / "iris"), "--host", "0.0.0.0", "--env", "staging"])
    assert public.exit_code == 2 and "no key was given" in public.output
    unknown_env = CliRunner().invoke(cli, ["serve", str(EXAMPLES / "iris"), "--env", "qa"])
    assert unknown_env.exit_code == 2 and "no deployment file" in unknown_env.output


def test_image_entrypoint_help_and_errors(tmp_path: Path) -> None:
    helped = subprocess.run(
        [sys.executable, "-m", "gitops_ml.serving", "--help"], capture_output=True, text=True, check=True
    )
    assert "--model-dir" in helped.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "gitops_ml.serving", "--model-dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr


def test_call_says_what_went_wrong_with_odd_urls_and_odd_servers(tmp_path: Path) -> None:
    import http.server
    import threading

    class Odd(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/html/score":
                body = b"<html>hi</html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
            elif self.path in ("/broken/score", "/empty/score"):
                body = b"{not json" if self.path.startswith("/broken") else b""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
            elif self.path == "/slow/score":
                threading.Event().wait(3)
                body = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
            else:
                body = b""
                self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Odd)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:

        def call(url: str, *extra: str) -> tuple[int, str]:
            result = CliRunner().invoke(cli, ["call", url, "--data", "{}", *extra])
            return result.exit_code, result.output

        for url in ("http://[::1", "127.0.0.1:8080", "ftp://example.com/x"):
            code, out = call(url)
            assert code == 2 and "Traceback" not in out and "internal error" not in out, (url, out)
        code, out = call(base + "/html/score")
        assert code == 5 and "with text/html, not JSON" in out
        code, out = call(base + "/slow/score", "--timeout", "0.5")
        assert code == 5 and "no answer from" in out and "within 0.5 s" in out
        code, out = call(base + "/missing/score")
        assert code == 1 and "answered 404: Not Found" in out and "None" not in out
        for broken in ("/broken/score", "/empty/score"):  # a 200 that is no JSON is no usable answer
            code, out = call(base + broken)
            assert code == 5 and "not JSON" in out, (broken, out)
        # bad input of the caller: a usage error, never an internal one, and no secret repeated
        for extra in (("--timeout", "-1"), ("--timeout", "nan"), ("--key", "clé"), ("--key", "a\nb")):
            code, out = call(base + "/html/score", *extra)
            assert code == 2 and "internal error" not in out and "a\nb" not in out and "clé" not in out, (extra, out)
        code, out = call(f"http://user:s3cretpw@127.0.0.1:{free_port()}/")
        assert code == 5 and "s3cretpw" not in out and "cannot reach http://127.0.0.1:" in out, out
    finally:
        server.shutdown()
        server.server_close()


def test_schema_generate_guards_its_sample(tmp_path: Path) -> None:
    sample = tmp_path / "sample.json"
    sample.write_text('{"data": [[1.0, 2.0]]}\n')
    same = CliRunner().invoke(cli, ["schema", "generate", "--sample", str(sample), "-o", str(sample)])
    assert same.exit_code == 2 and "is the sample itself" in same.output
    assert sample.read_text() == '{"data": [[1.0, 2.0]]}\n'
    missing = CliRunner().invoke(cli, ["schema", "generate", "--sample", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "cannot read" in missing.output
    sample.write_text('{"data": [[1.0, NaN]]}\n')
    nan = CliRunner().invoke(cli, ["schema", "generate", "--sample", str(sample)])
    assert nan.exit_code == 1 and f"{sample}:1:17: JSON syntax error: NaN is not JSON" in nan.output
