"""The pure parts: feature paths, which schema slots a table's columns fill, and the drift statistics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gitops_ml.errors import UsageError
from gitops_ml.monitor.drift import categorical_drift, numeric_drift, psi
from gitops_ml.monitor.features import FeaturePath, assign_columns, features_for_schema
from gitops_ml.monitor.profile import CATEGORICAL, profile_column
from gitops_ml.types import DriftThresholds
from tests.monitor.support import EXAMPLE

DEFAULT = DriftThresholds()


@pytest.mark.parametrize(
    ("text", "steps", "json_path"),
    [
        ("data[*][0]", ("data", "*", 0), '$."data"[*][0]'),
        ("frame[*].age", ("frame", "*", "age"), '$."frame"[*]."age"'),
        ("options.top_k", ("options", "top_k"), '$."options"."top_k"'),
        ('a["b c"][*]', ("a", "b c", "*"), '$."a"."b c"[*]'),
    ],
)
def test_feature_paths_round_trip(text: str, steps: tuple[object, ...], json_path: str) -> None:
    path = FeaturePath.parse(text)
    assert path.steps == steps and str(path) == text and path.json_path() == json_path


@pytest.mark.parametrize("bad", ["", ".a", "[0]", "a..b", "a[x]", "*"])
def test_bad_feature_paths_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="feature path"):
        FeaturePath.parse(bad)


def test_a_path_reads_scalars_and_the_elements_of_a_final_list() -> None:
    assert list(FeaturePath.parse("data[*][1]").values({"data": [[1, 2], [3, 4]]})) == [2, 4]
    assert list(FeaturePath.parse("predictions").values({"predictions": [0, 2]})) == [0, 2]
    assert list(FeaturePath.parse("options.top_k").values({"options": {"top_k": 3}})) == [3]
    assert list(FeaturePath.parse("options.top_k").values({"options": {}})) == []


def test_the_example_schemas_slots() -> None:
    iris = features_for_schema(json.loads((EXAMPLE / "models/iris/schema.json").read_text()))
    assert iris.positional == (("data", 4),) and iris.named == () and iris.skipped == ()
    digits = features_for_schema(json.loads((EXAMPLE / "models/digits/schema.json").read_text()))
    assert [str(s.path) for s in digits.named] == ["options.top_k"] and digits.skipped == ("image (binary data)",)


def test_dataframe_inputs_are_matched_by_column_name() -> None:
    schema = {
        "properties": {
            "frame": {
                "x-gitops-ml": {"kind": "dataframe", "orient": "records", "columns": {"age": "int64", "city": "object"}}
            }
        }
    }
    found = assign_columns(["city", "age", "score"], features_for_schema(schema), ["score"])
    assert [(c, str(p)) for c, p in found.features] == [("age", "frame[*].age"), ("city", "frame[*].city")]
    assert [(c, str(p)) for c, p in found.predictions] == [("score", "score")]
    with pytest.raises(UsageError, match="nothing to profile"):
        assign_columns(["height"], features_for_schema(schema), [])


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    assert psi([0.25] * 4, [0.25] * 4) == 0
    assert 0 < psi([0.25] * 4, [0.3, 0.2, 0.25, 0.25]) < psi([0.25] * 4, [0.7, 0.1, 0.1, 0.1])
    assert np.isfinite(psi([0.5, 0.5, 0.0], [0.0, 0.5, 0.5]))  # empty bins are floored, not infinite


def test_numeric_drift_needs_both_a_large_psi_and_a_small_p_value() -> None:
    rng = np.random.default_rng(0)
    reference = profile_column("x", FeaturePath.parse("data[*][0]"), pd.Series(rng.normal(0, 1, 2000)))
    same = numeric_drift(reference, rng.normal(0, 1, 5000), 0, DEFAULT)
    assert not same.drifted and same.psi < 0.05 and same.p_value > 0.01 and same.test == "KS"
    moved = numeric_drift(reference, rng.normal(1.5, 1, 5000), 0, DEFAULT)
    assert (
        moved.drifted
        and moved.psi > 1
        and moved.p_value < 1e-10
        and moved.production_mean == pytest.approx(1.5, abs=0.1)
    )
    # a large PSI from a handful of values is not evidence: the test's p-value keeps it from drifting
    few = numeric_drift(reference, np.array([0.1, 2.5, 2.6]), 0, DEFAULT)
    assert few.psi >= 0.2 and not few.drifted


def test_categorical_drift_counts_unseen_categories_as_other() -> None:
    reference = profile_column(
        "colour", FeaturePath.parse("colour"), pd.Series(["red"] * 500 + ["blue"] * 500), CATEGORICAL
    )
    same = categorical_drift(reference, {"red": 480, "blue": 520}, 0, DEFAULT)
    assert not same.drifted and same.test == "chi-square"
    moved = categorical_drift(reference, {"red": 200, "blue": 200, "green": 600}, 0, DEFAULT)
    assert moved.drifted and moved.distribution.labels == ("blue", "red", "(other)")
    assert moved.distribution.production == pytest.approx((0.2, 0.2, 0.6))
