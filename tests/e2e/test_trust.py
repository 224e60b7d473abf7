"""Trust, end to end with the real dockerd and registry: the same commit built twice on clean caches
gives the same image (id and pushed digest); the SBOM and provenance pushed next to the image are read
back through the registry's own API (OCI 1.1 referrers, or the tag schema distribution 2.8 needs) and
validated; `verify-image` holds for what was built and fails, naming the check, when git says otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from e2e.test_images import BASE_IMAGE, EXAMPLE, REGISTRY, _git, docker_ready, gitops_ml  # noqa: F401 - the fixture

pytestmark = [pytest.mark.docker, pytest.mark.slow]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFESTS = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def trust_repo(tmp_path_factory: pytest.TempPathFactory, docker_ready: None) -> Path:
    root = tmp_path_factory.mktemp("trust") / "repo"
    shutil.copytree(EXAMPLE, root)
    config = root / "gitops-ml.yaml"
    text = re.sub(r"registry: .*", f"registry: {REGISTRY}/trust-{uuid.uuid4().hex[:8]}", config.read_text())
    config.write_text(re.sub(r"baseImage: .*", f"baseImage: {BASE_IMAGE}", text))
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "example")
    return root


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the tests that do not need clean ones (each clean cache downloads the wheels again)."""
    return tmp_path_factory.mktemp("cache")


def _build(repo: Path, cache: Path, *args: str) -> dict[str, object]:
    # a cache of its own, uv's download cache included: nothing of an earlier build is reused
    env = {"GITOPS_ML_CACHE_DIR": str(cache), "UV_CACHE_DIR": str(cache / "uv")}
    result = gitops_ml("build", "--model", "iris", "--format", "json", *args, cwd=repo, env=env)
    assert result.returncode == 0, result.stderr
    image: dict[str, object] = json.loads(result.stdout)["images"][0]
    return image


def _registry_get(path: str, accept: str = MANIFESTS) -> httpx.Response:
    return httpx.get(f"http://{REGISTRY}/v2/{path}", headers={"Accept": accept}, timeout=30)


def test_the_same_commit_built_twice_on_clean_caches_gives_the_same_digest(trust_repo: Path, tmp_path: Path) -> None:
    first = _build(trust_repo, tmp_path / "cache-1", "--push")
    subprocess.run(["docker", "rmi", str(first["ref"])], check=True, capture_output=True)
    second = _build(trust_repo, tmp_path / "cache-2", "--push", "--rebuild")
    assert second["status"] == "built"
    assert second["image_id"] == first["image_id"], "same config, so the same layers byte for byte"
    assert second["digest"] == first["digest"], "the pushed manifest digest too"


def test_sbom_and_provenance_are_read_back_through_the_registry_api(trust_repo: Path, shared_cache: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    image = _build(trust_repo, shared_cache, "--push")
    ref, digest = str(image["ref"]), str(image["digest"])
    repository = ref[len(REGISTRY) + 1 :].rsplit(":", 1)[0]
    api = _registry_get(f"{repository}/referrers/{digest}", OCI_INDEX)
    if api.status_code == 200 and api.headers.get("content-type", "").startswith(OCI_INDEX):
        index = api.json()  # a registry with the OCI 1.1 referrers API
    else:
        assert api.status_code == 404, api.text  # distribution 2.8: the tag schema instead
        fallback = _registry_get(f"{repository}/manifests/sha256-{digest.removeprefix('sha256:')}", OCI_INDEX)
        assert fallback.status_code == 200, fallback.text
        index = fallback.json()
    by_type = {m["artifactType"]: m for m in index["manifests"]}
    assert set(by_type) == {"application/vnd.cyclonedx+json", "application/vnd.in-toto+json"}

    def payload(artifact_type: str) -> bytes:
        manifest = _registry_get(f"{repository}/manifests/{by_type[artifact_type]['digest']}").json()
        assert manifest["subject"]["digest"] == digest, "the artifact refers to the pushed image"
        blob = httpx.get(f"http://{REGISTRY}/v2/{repository}/blobs/{manifest['layers'][0]['digest']}", timeout=30)
        assert hashlib.sha256(blob.content).hexdigest() == manifest["layers"][0]["digest"].removeprefix("sha256:")
        return blob.content

    sbom = payload("application/vnd.cyclonedx+json")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(sbom.decode()) is None
    inside = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "cat", ref, "/opt/gitops-ml/sbom.cdx.json"],
        capture_output=True,
        check=True,
    ).stdout
    assert inside == sbom, "the SBOM pushed next to the image is the one inside it"

    statement = json.loads(payload("application/vnd.in-toto+json"))
    assert (
        statement["_type"] == "https://in-toto.io/Statement/v1"
        and statement["predicateType"] == "https://slsa.dev/provenance/v1"
    )
    assert statement["subject"][0]["digest"]["sha256"] == digest.removeprefix("sha256:")
    head = subprocess.run(
        ["git", "-C", str(trust_repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"]["source"]["revision"] == head
    resolved = {d["uri"]: d["digest"]["sha256"] for d in build["resolvedDependencies"] if "sha256" in d["digest"]}
    lock = (trust_repo / "models" / "iris" / "requirements.lock").read_bytes()
    assert resolved["models/iris/requirements.lock"] == hashlib.sha256(lock).hexdigest()
    assert resolved["sbom.cdx.json"] == hashlib.sha256(sbom).hexdigest()
    base_id = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", BASE_IMAGE], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert resolved[f"docker://{BASE_IMAGE}"] == base_id.removeprefix("sha256:")

    version = re.search(r"^version: (\S+)$", (trust_repo / "models" / "iris" / "model.yaml").read_text(), re.M)
    assert version is not None
    shown = gitops_ml("show", f"iris@{version[1]}", "--referrers", "--format", "json", cwd=trust_repo)
    assert shown.returncode == 0, shown.stderr
    registry = json.loads(shown.stdout)["registry"]
    assert registry["digest"] == digest and registry["via"] in {"api", "tag-schema"}
    assert {r["artifactType"] for r in registry["referrers"]} == set(by_type)


def test_verify_image_holds_for_the_build_and_names_what_git_contradicts(
    trust_repo: Path, shared_cache: Path, tmp_path: Path
) -> None:
    image = _build(trust_repo, shared_cache, "--push")
    ok = gitops_ml("verify-image", str(image["ref"]), cwd=trust_repo)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "verified: the image matches git" in ok.stdout and "FAIL" not in ok.stdout

    other = tmp_path / "other"
    shutil.copytree(trust_repo, other)
    lock = other / "models" / "iris" / "requirements.lock"
    lock.write_text(
        lock.read_text().replace("# via", "#  via", 1)
    )  # another lock, same version: git no longer matches the image
    _git(other, "commit", "-qam", "a different lock under the same version")
    bad = gitops_ml("verify-image", str(image["ref"]), "--format", "json", cwd=other)
    assert bad.returncode == 1, bad.stderr
    failed = {c["name"] for c in json.loads(bad.stdout)["checks"] if not c["ok"]}
    assert {"content tag", "provenance content", "provenance lock"} <= failed


def test_the_context_only_dockerfile_builds_the_same_layers_with_docker(
    trust_repo: Path, shared_cache: Path, tmp_path: Path
) -> None:
    """For docker/build-push-action users: the Dockerfile ADDs the same layer tars and sets the same settings."""
    out = tmp_path / "ctx"
    written = gitops_ml(
        "build",
        "--model",
        "iris",
        "--context-only",
        str(out),
        cwd=trust_repo,
        env={"GITOPS_ML_CACHE_DIR": str(shared_cache)},
    )
    assert written.returncode == 0, written.stderr
    tag = f"gitops-ml-context-test:{uuid.uuid4().hex[:8]}"
    try:
        subprocess.run(
            ["docker", "build", "-q", "-t", tag, str(out / "iris")],
            check=True,
            capture_output=True,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )
        ran = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--entrypoint",
                "/opt/gitops-ml/venv/bin/python",
                tag,
                "-c",
                "import getpass, sklearn, gitops_ml.serving; print(getpass.getuser())",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert ran.stdout.strip() == "gitops-ml", "the unprivileged user exists and the locked packages import"
        config = json.loads(
            subprocess.run(["docker", "image", "inspect", tag], capture_output=True, text=True, check=True).stdout
        )[0]["Config"]
        assert config["User"] == "10001:10001" and config["Entrypoint"][-2:] == ["-m", "gitops_ml.serving"]
        assert config["Labels"]["dev.gitops-ml.model"] == "iris"
    finally:
        subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)


def test_a_tampered_artifact_or_lock_hash_stops_the_build_located(
    trust_repo: Path, shared_cache: Path, tmp_path: Path
) -> None:
    env = {"GITOPS_ML_CACHE_DIR": str(shared_cache)}
    lock_repo = tmp_path / "lock"
    shutil.copytree(trust_repo, lock_repo)
    lock = lock_repo / "models" / "iris" / "requirements.lock"
    text = lock.read_text()
    block = re.search(r"^numpy==.*?(?=^\S)", text, re.S | re.M)
    assert block
    lock.write_text(text.replace(block.group(0), re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "cd" * 32, block.group(0))))
    line = text.splitlines().index(block.group(0).splitlines()[0]) + 1
    _git(lock_repo, "commit", "-qam", "a lock whose numpy hashes are not numpy's")
    refused = gitops_ml("build", "--model", "iris", "--push", "--rebuild", cwd=lock_repo, env=env)
    assert refused.returncode == 6, refused.stderr
    assert (
        f"error: models/iris/requirements.lock:{line}:1: model iris: a downloaded file does not match the lock"
        in refused.stderr
    )

    artifact_repo = tmp_path / "artifact"
    shutil.copytree(trust_repo, artifact_repo)
    artifact = artifact_repo / "models" / "iris" / "model.joblib"
    artifact.write_bytes(artifact.read_bytes()[:-1] + b"\0")
    _git(artifact_repo, "commit", "-qam", "an artifact that is not the one model.yaml names")
    stopped = gitops_ml("build", "--model", "iris", "--push", "--rebuild", cwd=artifact_repo, env=env)
    assert stopped.returncode == 1, stopped.stderr
    assert re.search(
        r"error: models/iris/model\.yaml:\d+:\d+: sha256 of models/iris/model\.joblib is [0-9a-f]{64}, not ",
        stopped.stderr,
    ), stopped.stderr
