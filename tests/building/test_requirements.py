"""requirements.txt lines are checked and located before uv resolves them; its failures name the line and the index."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gitops_ml.build.requirements import check_requirement_line
from gitops_ml.cli.main import cli
from gitops_ml.errors import Location

REQS = "models/iris/requirements.txt"


def _build_with(example_repo: Path, tmp_path: Path, lines: str) -> tuple[int, str, Path]:
    """iris without its lock (a lock older than these lines would be reported first) and with these requirements."""
    model = example_repo / "models" / "iris"
    manifest = model / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("  lock: requirements.lock\n", ""))
    (model / "requirements.lock").unlink()
    req = model / "requirements.txt"
    req.write_text(lines)
    out = tmp_path / "c"
    result = CliRunner().invoke(cli, ["build", str(example_repo), "--model", "iris", "--context-only", str(out)])
    return result.exit_code, result.stderr, out


def test_invalid_line_is_located_and_is_not_a_network_problem(example_repo: Path, tmp_path: Path) -> None:
    code, err, out = _build_with(example_repo, tmp_path, "joblib>=1.3\nthis is not valid!!\nnumpy>=1.26\n")
    assert code == 1, err
    assert f"{REQS}:2:1: invalid requirement 'this is not valid!!'" in err
    assert "uv" not in err and "package index" not in err
    assert not (out / "iris").exists()


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("./localpkg", "local path or URL"),
        ("/opt/src/pkg", "local path or URL"),
        ("git+https://example.com/org/pkg.git", "local path or URL"),
        ("pkg @ git+https://example.com/org/pkg.git", "URL and VCS requirements"),
        ("pkg @ file:///tmp/pkg-1.0-py3-none-any.whl", "URL and VCS requirements"),
        ("-e git+https://example.com/org/pkg.git#egg=pkg", "editable requirement"),
        ("--editable ./localpkg", "editable requirement"),
        ("-r other.txt", "cannot include another file"),
        ("-c constraints.txt", "cannot include another file"),
        ("--requirement=other.txt", "cannot include another file"),
        ("-f ./wheels", "local wheel directory"),
        ("joblib==1.4.2 --hash=sha256:" + "0" * 64, "hashes belong in the model's lock"),
    ],
)
def test_lines_pip_would_resolve_elsewhere_are_refused(
    example_repo: Path, tmp_path: Path, line: str, words: str
) -> None:
    code, err, out = _build_with(example_repo, tmp_path, f"# models need\njoblib>=1.3\n{line}\n")
    assert code == 1, err
    assert f"{REQS}:3:1: " in err and words in err, err
    assert "hint:" in err
    assert not (out / "iris").exists()


def test_every_bad_line_is_reported_at_once(example_repo: Path, tmp_path: Path) -> None:
    code, err, _ = _build_with(example_repo, tmp_path, "./a\njoblib>=1.3\n-e ./b\nnot valid!!\n")
    assert code == 1
    assert all(f"{REQS}:{n}:1:" in err for n in (1, 3, 4)), err


def test_local_code_is_pointed_at_include_and_publishing(example_repo: Path, tmp_path: Path) -> None:
    _, err, _ = _build_with(example_repo, tmp_path, "./localpkg\n")
    assert "publish the package" in err and "include:" in err and "images are built from the package index" in err


@pytest.mark.parametrize(
    "line",
    [
        "numpy>=1.26",
        "joblib>=1.3 ; python_version >= '3.8'",
        "scikit-learn[alldeps]==1.4.2",
        "-i https://pypi.example.com/simple",
        "--index-url=https://pypi.example.com/simple",
        "--extra-index-url https://mirror.example.com/simple",
        "--trusted-host mirror.example.com",
        "-f https://example.com/wheels/",
        "--pre",
    ],
)
def test_index_options_and_plain_requirements_are_accepted(line: str) -> None:
    assert check_requirement_line(line, Location(REQS, 1, 1)) is None


def test_continuation_and_comments_keep_their_line_numbers(example_repo: Path, tmp_path: Path) -> None:
    code, err, _ = _build_with(example_repo, tmp_path, "# header\njoblib \\\n  >=1.3  # inline\n\n-e ./x\n")
    assert code == 1 and f"{REQS}:5:1: editable requirement" in err, err


def test_package_missing_from_the_index_names_the_index(example_repo: Path, tmp_path: Path, empty_index: str) -> None:
    code, err, _ = _build_with(example_repo, tmp_path, "# ours\n\ngitops-ml-no-such-package==9.9.9\njoblib>=1.3\n")
    assert code == 5, err
    assert f"{REQS}:3:1:" in err and "gitops-ml-no-such-package" in err
    assert "cannot resolve its requirements" in err and empty_index in err
