"""End to end with a real dockerd and registry: build and push the example's models, pull one by the
rendered reference, run it and score its sample; a retrained model pushes only its last layer.

Needs what `.ci/setup-docker.sh` starts: GITOPS_ML_TEST_REGISTRY (default 127.0.0.1:5000) and
GITOPS_ML_TEST_BASE_IMAGE (default gitops-ml-base:bookworm). In CI a missing piece fails the test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from support import copy_example, require

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "repo-layout"
REGISTRY = os.environ.get("GITOPS_ML_TEST_REGISTRY", "127.0.0.1:5000")
BASE_IMAGE = os.environ.get("GITOPS_ML_TEST_BASE_IMAGE", "gitops-ml-base:bookworm")

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _missing() -> str:
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        return "no Docker engine reachable (run `bash .ci/setup-docker.sh`)"
    if subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True, check=False).returncode != 0:
        return f"base image {BASE_IMAGE} missing (run `bash .ci/setup-docker.sh`)"
    import httpx  # noqa: PLC0415

    try:
        httpx.get(f"http://{REGISTRY}/v2/", timeout=5).raise_for_status()
    except httpx.HTTPError:
        return f"no registry at {REGISTRY} (run `bash .ci/setup-docker.sh`)"
    return ""


@pytest.fixture(scope="module")
def docker_ready() -> None:
    reason = _missing()
    require(not reason, reason)


_RUNTIME: dict[str, str] = {}


def gitops_ml(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **_RUNTIME, **(env or {}))
    if os.environ.get("GITOPS_ML_TEST_CACHE_DIR"):  # reuse wheelhouses between CI runs when given
        env["GITOPS_ML_CACHE_DIR"] = os.environ["GITOPS_ML_TEST_CACHE_DIR"]
    return subprocess.run(
        [sys.executable, "-m", "gitops_ml", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False
    )


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, docker_ready: None) -> Path:
    """The example repository pointed at the local registry (a fresh namespace) and base image."""
    root = tmp_path_factory.mktemp("e2e") / "repo"
    copy_example(root)
    config = root / "gitops-ml.yaml"
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    text = re.sub(r"registry: .*", f"registry: {REGISTRY}/{namespace}", config.read_text())
    config.write_text(re.sub(r"baseImage: .*", f"baseImage: {BASE_IMAGE}", text))
    # one runtime wheel for the module: a checkout edited while the tests run must not look like a runtime change
    wheels = root.parent / "runtime"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(EXAMPLE.parents[1]),
        ],
        check=True,
        capture_output=True,
    )
    _RUNTIME["GITOPS_ML_RUNTIME_WHEEL"] = str(next(wheels.glob("gitops_ml-*.whl")))
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "example")
    return root


def _rendered_ref(repo: Path, model: str, environment: str) -> str:
    """The image reference `gitops-ml render` writes into the environment's overlay."""
    import yaml  # noqa: PLC0415

    result = gitops_ml("render", "--env", environment, cwd=repo)
    assert result.returncode == 0, result.stderr
    overlay = yaml.safe_load((repo / "deploy" / "apps" / environment / model / "kustomization.yaml").read_text())
    (image,) = [i for i in overlay["images"] if i["name"].rsplit("/", 1)[-1] == model]
    return f"{image.get('newName', image['name'])}:{image['newTag']}"


def test_build_push_pull_run_score(repo: Path) -> None:
    built = gitops_ml("build", "--push", "--format", "json", cwd=repo)
    assert built.returncode == 0, built.stderr
    images = {i["model"]: i for i in json.loads(built.stdout)["images"]}
    assert set(images) == {"iris", "digits"}
    for image in images.values():
        assert image["status"] == "built" and image["pushed"] and image["digest"].startswith("sha256:")

    ref = _rendered_ref(repo, "iris", "staging")
    assert ref == images["iris"]["ref"], "build must tag exactly what render writes"

    # drop the local copy so that run-image has to pull it by the rendered reference
    subprocess.run(["docker", "rmi", "--no-prune", ref], check=True, capture_output=True)
    ran = gitops_ml("run-image", "iris", "--env", "staging", "--format", "json", cwd=repo)
    assert ran.returncode == 0, ran.stderr
    answer = json.loads(ran.stdout)
    assert answer["status"] == 200 and answer["ref"] == ref
    assert json.loads(answer["body"])["predictions"] == [0, 1, 2]
    assert answer["kept"] is False and answer["curl"] is None, "no curl command for a container that was removed"
    assert not subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"name={answer['container']}"], capture_output=True, text=True, check=True
    ).stdout.strip()

    inspect = json.loads(
        subprocess.run(["docker", "image", "inspect", ref], capture_output=True, text=True, check=True).stdout
    )[0]
    config = inspect["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"][-2:] == ["-m", "gitops_ml.serving"]
    assert "/readyz" in " ".join(config["Healthcheck"]["Test"])
    labels = config["Labels"]
    assert labels["dev.gitops-ml.model"] == "iris" and labels["org.opencontainers.image.version"] == "1.0.0"
    assert re.fullmatch(r"[0-9a-f]{40}", labels["org.opencontainers.image.revision"])
    assert labels["dev.gitops-ml.artifact.sha256"] == re.search(
        r"sha256: (\w+)", (repo / "models/iris/model.yaml").read_text()
    ).group(1)  # type: ignore[union-attr]
    listing = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--entrypoint",
            "/bin/sh",
            ref,
            "-c",
            "ls /tmp; find /opt /tmp -name '*.whl' | head -3; python -c 'import git' 2>&1 | tail -1",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ".whl" not in listing and "wheels" not in listing, listing
    assert "No module named 'git'" in listing, "the image carries the server's dependencies, not the CLI's"
    fast = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--entrypoint",
            "/opt/gitops-ml/venv/bin/python",
            ref,
            "-c",
            "from gitops_ml.serving.server import best_http, best_loop; print(best_http(), best_loop())",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert fast == ["httptools", "uvloop"], "the image serves with the parser and loop the benchmarks measure"

    again = gitops_ml("build", "--push", "--format", "json", cwd=repo)
    assert again.returncode == 0, again.stderr
    assert {i["status"] for i in json.loads(again.stdout)["images"]} == {"exists"}


def test_retrained_model_pushes_only_its_last_layer(repo: Path) -> None:
    import joblib  # noqa: PLC0415

    model_dir = repo / "models" / "iris"
    first = gitops_ml("build", "--model", "iris", "--push", "--format", "json", cwd=repo)
    assert first.returncode == 0, first.stderr
    # same estimator, bytes never seen before (the daemon and the registry outlive test runs): a stand-in
    # for a retrained artifact with a compatible schema
    estimator = joblib.load(model_dir / "model.joblib")
    estimator.retrained_by_test = secrets.token_hex(16)
    joblib.dump(estimator, model_dir / "model.joblib")
    digest = hashlib.sha256((model_dir / "model.joblib").read_bytes()).hexdigest()
    text = (model_dir / "model.yaml").read_text()
    text = re.sub(r"sha256: \w+", f"sha256: {digest}", text).replace("version: 1.0.0", "version: 1.1.0")
    (model_dir / "model.yaml").write_text(text)
    _git(repo, "commit", "-qam", "retrain iris")  # as CI does: a push of uncommitted model files is refused
    second = gitops_ml("build", "--model", "iris", "--push", "--format", "json", cwd=repo)
    assert second.returncode == 0, second.stderr
    image = json.loads(second.stdout)["images"][0]
    assert image["status"] == "built" and image["ref"].split(":")[-1].startswith("1.1.0-")
    assert image["layers_pushed"] == 1, second.stderr


def test_bad_base_image_and_unreachable_registry(repo: Path) -> None:
    missing = gitops_ml("build", "--model", "iris", "--base-image", "127.0.0.1:5000/gitops-ml-no-such-base:1", cwd=repo)
    assert missing.returncode == 5
    assert (
        "base image 127.0.0.1:5000/gitops-ml-no-such-base:1 does not exist" in missing.stderr
        and "hint:" in missing.stderr
    )
    closed = gitops_ml("build", "--model", "iris", "--push", "--registry", "127.0.0.1:1/nowhere", cwd=repo)
    assert closed.returncode == 5
    assert (
        "connection refused" in closed.stderr.lower() and "hint: is the registry 127.0.0.1:1 running" in closed.stderr
    )


@pytest.fixture
def locked_registry(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A second distribution registry on 127.0.0.1 that demands htpasswd credentials: (host, user, password)."""
    import bcrypt  # noqa: PLC0415

    user, password = "ci", secrets.token_urlsafe(12)
    (tmp_path / "htpasswd").write_bytes(
        f"{user}:".encode() + bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)) + b"\n"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{s.getsockname()[1]}"
    (tmp_path / "registry.yml").write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'data'}}}}}\n"
        f"http: {{addr: '{host}'}}\n"
        f"auth: {{htpasswd: {{realm: gitops-ml-test, path: {tmp_path / 'htpasswd'}}}}}\n"
    )
    log = tmp_path / "registry.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            ["docker-registry", "serve", str(tmp_path / "registry.yml")], stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        import httpx  # noqa: PLC0415

        for _ in range(100):
            try:
                if httpx.get(f"http://{host}/v2/", timeout=1).status_code == 401:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the htpasswd registry on {host} did not start: {log.read_text()}")
        yield host, user, password
    finally:
        process.terminate()
        process.wait(timeout=10)


def _docker_config(directory: Path, host: str, user: str, password: str) -> Path:
    directory.mkdir()
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    (directory / "config.json").write_text(json.dumps({"auths": {host: {"auth": token}}}))
    return directory


def test_push_to_a_registry_that_wants_credentials(
    repo: Path, locked_registry: tuple[str, str, str], tmp_path: Path
) -> None:
    host, user, password = locked_registry
    target = f"{host}/locked"
    anonymous = gitops_ml("build", "--model", "iris", "--push", "--registry", target, "--format", "json", cwd=repo)
    assert anonymous.returncode == 5, anonymous.stderr
    assert "Traceback" not in anonymous.stderr + anonymous.stdout
    # under --format json the error is JSON on stdout, with its hint
    error = json.loads(anonymous.stdout)
    assert error["ok"] is False and error["exitCode"] == 5, error
    assert f"log in first: `docker login {host}`" in json.dumps(error["error"]), error

    wrong = _docker_config(tmp_path / "wrong", host, user, "not-the-password")
    refused = gitops_ml(
        "build", "--model", "iris", "--push", "--registry", target, env={"DOCKER_CONFIG": str(wrong)}, cwd=repo
    )
    assert refused.returncode == 5 and f"docker login {host}" in refused.stderr, refused.stderr
    assert "not-the-password" not in refused.stderr + refused.stdout

    good = _docker_config(tmp_path / "good", host, user, password)
    pushed = gitops_ml(
        "build",
        "--model",
        "iris",
        "--push",
        "--registry",
        target,
        "--format",
        "json",
        env={"DOCKER_CONFIG": str(good)},
        cwd=repo,
    )
    assert pushed.returncode == 0, pushed.stderr
    (image,) = json.loads(pushed.stdout)["images"]
    assert image["ref"].startswith(f"{target}/iris:") and image["status"] == "built"
    import httpx  # noqa: PLC0415

    repository, tag = image["ref"][len(host) + 1 :].rsplit(":", 1)
    manifest = httpx.get(
        f"http://{host}/v2/{repository}/manifests/{tag}",
        auth=(user, password),
        timeout=10,
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert manifest.status_code == 200 and manifest.headers["Docker-Content-Digest"] == image["digest"]

    again = gitops_ml(
        "build",
        "--model",
        "iris",
        "--push",
        "--registry",
        target,
        "--format",
        "json",
        env={"DOCKER_CONFIG": str(good)},
        cwd=repo,
    )
    assert again.returncode == 0 and json.loads(again.stdout)["images"][0]["status"] == "exists", again.stderr


def test_run_image_stops_waiting_when_init_fails_and_leaves_no_container(repo: Path, tmp_path: Path) -> None:
    """A model whose init() fails is reported at once, located at its score.py; a port that is taken
    is a clear error, and neither leaves a container behind."""
    broken = tmp_path / "broken"
    shutil.copytree(repo, broken)
    score = broken / "models" / "iris" / "score.py"
    score.write_text(
        score.read_text().replace(
            "def init():", "def init():\n    raise RuntimeError('cannot load weights')\n\n\ndef _unused():", 1
        )
    )
    _git(broken, "commit", "-qam", "init fails")
    built = gitops_ml("build", "--model", "iris", "--format", "json", cwd=broken)
    assert built.returncode == 0, built.stderr
    ref = json.loads(built.stdout)["images"][0]["ref"]

    started = time.monotonic()
    failed = gitops_ml("run-image", "iris", "--env", "staging", "--timeout", "120", cwd=broken)
    assert failed.returncode == 1, failed.stderr
    assert time.monotonic() - started < 60, "the failure is seen at once, not at the readiness timeout"
    assert (
        "models/iris/score.py: init() failed in the container" in failed.stderr
        and "cannot load weights" in failed.stderr
    )

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = gitops_ml("run-image", "iris", "--env", "staging", "--port", str(port), cwd=broken)
    assert busy.returncode == 5 and "cannot start a container" in busy.stderr, busy.stderr
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"ancestor={ref}"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert left == [], "no container is left behind"
