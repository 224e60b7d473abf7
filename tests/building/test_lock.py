"""`gitops-ml lock`, locks older than their requirements, hashes that do not match, and the SBOM and
provenance written from a build, without a Docker engine (uv resolves against the package index)."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
from pathlib import Path

from click.testing import CliRunner, Result

from gitops_ml.build.layers import SBOM_PATH
from gitops_ml.build.provenance import PREDICATE_TYPE, STATEMENT_TYPE, ProvenanceInputs, render_provenance
from gitops_ml.cli.main import cli
from gitops_ml.validate.locks import parse_lock

IRIS = "models/iris"


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _unlock(repo: Path) -> None:
    model = repo / IRIS
    manifest = model / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("  lock: requirements.lock\n", ""))
    (model / "requirements.lock").unlink()


def test_lock_writes_a_hashed_lock_and_names_it_in_the_manifest(example_repo: Path) -> None:
    _unlock(example_repo)
    manifest = example_repo / IRIS / "manifest.yaml"
    before = manifest.read_text()
    result = _run("lock", "iris", "--repo", str(example_repo))
    assert result.exit_code == 0, result.output
    assert (
        "iris: models/iris/requirements.lock written" in result.stdout and "manifest.yaml now names it" in result.stdout
    )
    after = manifest.read_text()
    assert after == before.replace(
        "  requirements: requirements.txt\n", "  requirements: requirements.txt\n  lock: requirements.lock\n"
    ), "one line added; the modeline comment and everything else kept"
    text = (example_repo / IRIS / "requirements.lock").read_text()
    lock, findings = parse_lock(f"{IRIS}/requirements.lock", text)
    assert lock is not None and not findings
    assert lock.python == "3.11" and lock.platform == "x86_64-manylinux_2_36"
    names = {p.name for p in lock.packages}
    assert {"scikit-learn", "joblib", "numpy", "uvicorn", "httptools", "uvloop", "orjson"} <= names, (
        "the server's own are locked too"
    )
    assert all(p.hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in p.hashes) for p in lock.packages)
    assert lock.package("scikit-learn").version == "1.9.1"  # type: ignore[union-attr]
    assert _run("validate", str(example_repo)).exit_code == 0

    again = _run("lock", "iris", "--repo", str(example_repo))
    assert (
        again.exit_code == 0 and "requirements.lock unchanged" in again.stdout and "manifest.yaml" not in again.stdout
    )


def test_a_lock_older_than_its_requirements_is_reported_at_the_requirement(example_repo: Path) -> None:
    req = example_repo / IRIS / "requirements.txt"
    req.write_text(req.read_text().replace("numpy>=1.26", "numpy>=1.27") + "pillow>=10.2\n")
    result = _run("validate", str(example_repo))
    assert result.exit_code == 1
    assert (
        f"{IRIS}/requirements.txt:3:1: 'numpy>=1.27' is not among the requirements {IRIS}/requirements.lock was resolved from"
        in result.stderr
    )
    assert f"{IRIS}/requirements.txt:4:1: 'pillow>=10.2' is not among" in result.stderr
    lock_line = (example_repo / IRIS / "requirements.lock").read_text().splitlines().index(
        "# requirement: numpy>=1.26"
    ) + 1
    assert f"{IRIS}/requirements.lock:{lock_line}:1: 'numpy>=1.26' is locked but no longer required" in result.stderr
    assert "hint: run `gitops-ml lock iris`" in result.stderr
    built = _run("build", str(example_repo), "--model", "iris", "--context-only", str(example_repo.parent / "ctx"))
    assert built.exit_code == 1 and "older than its requirements" in built.stderr, "a build never installs a stale lock"


def test_a_python_other_than_the_locks_is_located_in_the_manifest(example_repo: Path) -> None:
    manifest = example_repo / IRIS / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace('python: "3.11"', 'python: "3.12"'))
    line = manifest.read_text().splitlines().index('python: "3.12"') + 1
    result = _run("validate", str(example_repo))
    assert result.exit_code == 1
    assert (
        f"{IRIS}/manifest.yaml:{line}:9: python is 3.12 but {IRIS}/requirements.lock was resolved for Python 3.11"
        in result.stderr
    )


def test_hand_edited_lock_entries_without_hashes_are_refused(example_repo: Path) -> None:
    lock = example_repo / IRIS / "requirements.lock"
    text = lock.read_text()
    block = re.search(r"^joblib==.*?(?=^\S)", text, re.S | re.M)
    assert block
    line = text.splitlines().index(block.group(0).splitlines()[0]) + 1
    lock.write_text(text.replace(block.group(0), "joblib==1.6.0\n"))
    result = _run("validate", str(example_repo))
    assert result.exit_code == 1
    assert (
        f"{IRIS}/requirements.lock:{line}:1: lock entry 'joblib==1.6.0' is not given --hash=sha256:... values"
        in result.stderr
    )


def test_a_lock_whose_hash_does_not_match_stops_the_build_at_its_line(example_repo: Path, tmp_path: Path) -> None:
    lock = example_repo / IRIS / "requirements.lock"
    text = lock.read_text()
    block = re.search(r"^joblib==.*?(?=^\S)", text, re.S | re.M)
    assert block
    lock.write_text(text.replace(block.group(0), re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "ab" * 32, block.group(0))))
    line = text.splitlines().index(block.group(0).splitlines()[0]) + 1
    out = tmp_path / "ctx"
    result = _run("build", str(example_repo), "--model", "iris", "--context-only", str(out))
    assert result.exit_code == 6, result.output
    assert (
        f"error: {IRIS}/requirements.lock:{line}:1: model iris: a downloaded file does not match the lock"
        in result.stderr
    )
    assert "joblib" in result.stderr and "hint:" in result.stderr
    assert not out.exists() or not list(out.iterdir()), "nothing is left behind"


def test_a_tampered_artifact_stops_the_build_at_its_digest(example_repo: Path, tmp_path: Path) -> None:
    artifact = example_repo / IRIS / "model.joblib"
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    result = _run("build", str(example_repo), "--model", "iris", "--context-only", str(tmp_path / "ctx"))
    assert result.exit_code == 1, result.output
    line = (example_repo / IRIS / "model.yaml").read_text().splitlines()
    number = next(i for i, text in enumerate(line) if "sha256:" in text) + 1
    assert f"{IRIS}/model.yaml:{number}:" in result.stderr and "sha256 of models/iris/model.joblib is" in result.stderr


def test_the_sbom_in_the_artifact_layer_is_valid_cyclonedx_of_what_the_image_holds(
    example_repo: Path, tmp_path: Path
) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    out = tmp_path / "ctx"
    result = _run("build", str(example_repo), "--model", "iris", "--context-only", str(out))
    assert result.exit_code == 0, result.output
    with tarfile.open(out / "iris" / "layers" / "artifact.tar") as tar:
        handle = tar.extractfile(SBOM_PATH.strip("/"))
        assert handle is not None
        raw = handle.read()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(raw.decode()) is None, (
        "valid against the CycloneDX 1.6 JSON Schema"
    )
    sbom = json.loads(raw)
    by_type: dict[str, list[dict[str, object]]] = {}
    for component in sbom["components"]:
        by_type.setdefault(component["type"], []).append(component)
    (artifact,) = by_type["machine-learning-model"]
    sha = re.search(r"sha256: (\w+)", (example_repo / IRIS / "model.yaml").read_text()).group(1)  # type: ignore[union-attr]
    assert artifact["hashes"] == [{"alg": "SHA-256", "content": sha}]
    (runtime,) = by_type["framework"]
    assert runtime["name"] == "gitops-ml"
    (base,) = by_type["container"]
    assert base["name"] == "python:3.11-slim"
    lock, _ = parse_lock("x", (example_repo / IRIS / "requirements.lock").read_text())
    assert lock is not None
    packages = {(c["name"], c["version"]) for c in by_type["library"]}
    assert packages == {(p.name, p.version) for p in lock.packages}
    numpy = next(c for c in by_type["library"] if c["name"] == "numpy")
    assert {h["content"] for h in numpy["hashes"]} == {h.removeprefix("sha256:") for h in lock.package("numpy").hashes}  # type: ignore[union-attr]


def test_provenance_is_an_in_toto_statement_of_the_pushed_digest() -> None:
    statement = json.loads(
        render_provenance(
            ProvenanceInputs(
                image="127.0.0.1:5000/ml/iris",
                digest="sha256:" + "1" * 64,
                model="iris",
                version="1.0.0",
                content_digest="2" * 64,
                source="https://github.com/example/models.git",
                revision="3" * 40,
                model_dir=IRIS,
                base_image="gitops-ml-base:bookworm",
                base_id="sha256:" + "4" * 64,
                lock_path=f"{IRIS}/requirements.lock",
                lock_sha256="5" * 64,
                sbom_sha256="6" * 64,
                builder="https://github.com/example/models/actions/runs/7",
                runtime_version="0.1.0",
                started=0,
                finished=1,
            )
        )
    )
    assert statement["_type"] == STATEMENT_TYPE and statement["predicateType"] == PREDICATE_TYPE
    assert statement["subject"] == [{"name": "127.0.0.1:5000/ml/iris", "digest": {"sha256": "1" * 64}}]
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"]["source"] == {
        "uri": "git+https://github.com/example/models.git",
        "revision": "3" * 40,
        "path": IRIS,
    }
    assert build["externalParameters"]["model"]["contentDigest"] == {"sha256": "2" * 64}
    resolved = {d["uri"]: d["digest"] for d in build["resolvedDependencies"]}
    assert resolved["docker://gitops-ml-base:bookworm"] == {"sha256": "4" * 64}
    assert resolved[f"{IRIS}/requirements.lock"] == {"sha256": "5" * 64}
    assert statement["predicate"]["runDetails"]["builder"]["id"].endswith("/actions/runs/7")


def test_lock_help_and_unknown_model(example_repo: Path) -> None:
    assert "hashed" in _run("lock", "--help").output.lower() or "hashes" in _run("lock", "--help").output
    result = _run("lock", "nope", "--repo", str(example_repo))
    assert result.exit_code == 2 and "unknown model(s): nope" in result.stderr
    assert (
        subprocess.run(
            ["git", "-C", str(example_repo), "status", "--porcelain"], capture_output=True, text=True, check=True
        ).stdout
        == ""
    )
