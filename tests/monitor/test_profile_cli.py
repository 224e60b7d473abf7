"""`gitops-ml profile DATA --model M`: the reference profile file and model.yaml's `reference:`, from
CSV, Parquet and JSON lines alike; data that does not fit the input schema is refused with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from gitops_ml.monitor.profile import load_profile
from tests.monitor.support import EXAMPLE, copy_example, invoke, iris_rows

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = copy_example(tmp_path / "repo")
    model = repo / "models/iris/model.yaml"
    model.write_text(model.read_text().replace("reference: reference.json\n", ""))
    (repo / "models/iris/reference.json").unlink()
    return repo


def frame() -> pd.DataFrame:
    data = pd.DataFrame(iris_rows(120, seed=3), columns=COLUMNS)
    data["predictions"] = [0 if v < 2.5 else 1 if v < 4.9 else 2 for v in data["petal_length"]]
    return data


def test_profile_writes_the_file_and_sets_reference_keeping_model_yaml_as_it_was(repo: Path, tmp_path: Path) -> None:
    before = (repo / "models/iris/model.yaml").read_text()
    frame().to_csv(tmp_path / "train.csv", index=False)
    result = invoke("profile", str(tmp_path / "train.csv"), "--model", "iris", "--repo", str(repo))
    assert result.code == 0, result.output
    assert "wrote models/iris/reference.json: 4 feature(s), 1 prediction(s), 120 row(s)" in result.stdout
    assert "gitops-ml bump iris" in result.stderr
    assert (repo / "models/iris/model.yaml").read_text() == before + "reference: reference.json\n"
    profile = load_profile("reference.json", (repo / "models/iris/reference.json").read_bytes())
    assert [(f.name, str(f.path), f.kind) for f in profile.features] == [
        (c, f"data[*][{i}]", "numeric") for i, c in enumerate(COLUMNS)
    ]
    (prediction,) = profile.predictions
    assert (prediction.name, str(prediction.path), prediction.kind) == ("predictions", "predictions", "categorical")
    assert sum(prediction.categorical.categories.values()) == 120  # type: ignore[union-attr]
    # a second run changes nothing in model.yaml and writes the same bytes
    first = (repo / "models/iris/reference.json").read_bytes()
    assert invoke("profile", str(tmp_path / "train.csv"), "--model", "iris", "--repo", str(repo)).code == 0
    assert (repo / "models/iris/reference.json").read_bytes() == first
    assert (repo / "models/iris/model.yaml").read_text() == before + "reference: reference.json\n"


def test_csv_parquet_and_json_lines_give_the_same_profile(repo: Path, tmp_path: Path) -> None:
    data = frame()
    data.to_csv(tmp_path / "train.csv", index=False)
    data.to_json(tmp_path / "train.jsonl", orient="records", lines=True)
    duckdb.from_df(data).write_parquet(str(tmp_path / "train.parquet"))
    profiles = []
    for name in ("train.csv", "train.jsonl", "train.parquet"):
        result = invoke("profile", str(tmp_path / name), "--model", "iris", "--repo", str(repo), "-o", f"{name}.json")
        assert result.code == 0, result.output
        doc = json.loads((repo / f"models/iris/{name}.json").read_text())
        assert doc.pop("source") == name
        profiles.append(doc)
    assert profiles[0] == profiles[1] == profiles[2]


def test_the_example_profiles_load_and_describe_the_schemas_inputs() -> None:
    iris = load_profile("reference.json", (EXAMPLE / "models/iris/reference.json").read_bytes())
    assert [str(f.path) for f in iris.features] == [f"data[*][{i}]" for i in range(4)] and iris.rows == 105
    digits = load_profile("reference.json", (EXAMPLE / "models/digits/reference.json").read_bytes())
    assert digits.features == () and [p.name for p in digits.predictions] == ["digit"]


@pytest.mark.parametrize(
    ("columns", "options", "message"),
    [
        (
            COLUMNS[:3] + ["predictions"],
            (),
            "input 'data' takes 4 numbers per row, and the data has 3 other column(s): sepal_length, sepal_width, petal_length",
        ),
        (COLUMNS + ["predictions"], ("--prediction", "label"), "--prediction label: the data has no column 'label'"),
        (
            COLUMNS + ["predictions"],
            ("--categorical", "colour"),
            "--categorical colour: the data has no column 'colour'",
        ),
    ],
)
def test_data_that_does_not_fit_the_schema_is_refused(
    repo: Path, tmp_path: Path, columns: list[str], options: tuple[str, ...], message: str
) -> None:
    frame()[columns].to_csv(tmp_path / "train.csv", index=False)
    result = invoke("profile", str(tmp_path / "train.csv"), "--model", "iris", "--repo", str(repo), *options)
    assert result.code == 2 and message in result.stderr, result.output
    assert not (repo / "models/iris/reference.json").exists()


def test_bad_data_files_and_names(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("sepal_length,sepal_width,petal_length,petal_width\n")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    (tmp_path / "train.xlsx").write_bytes(b"")
    cases = [
        (("profile", str(tmp_path / "missing.csv"), "--model", "iris"), 2, "missing.csv does not exist"),
        (("profile", str(tmp_path / "empty.csv"), "--model", "iris"), 2, "empty.csv has no rows"),
        (("profile", str(tmp_path / "broken.parquet"), "--model", "iris"), 1, "cannot read"),
        (("profile", str(tmp_path / "train.xlsx"), "--model", "iris"), 2, "unknown data format"),
        (("profile", str(tmp_path / "empty.csv"), "--model", "tulip"), 2, "no model 'tulip'"),
    ]
    for args, code, message in cases:
        result = invoke(*args, "--repo", str(repo))
        assert result.code == code and message in result.stderr, (args, result.output)


def test_a_profile_that_is_not_one_is_located(tmp_path: Path) -> None:
    from gitops_ml.errors import LoadError

    doc = json.loads((EXAMPLE / "models/iris/reference.json").read_text())
    doc["features"][1]["type"] = "number"
    with pytest.raises(LoadError) as caught:
        load_profile("models/iris/reference.json", json.dumps(doc, indent=1).encode())
    assert "features.1.type" in caught.value.message and str(caught.value.location).startswith(
        "models/iris/reference.json:"
    )
