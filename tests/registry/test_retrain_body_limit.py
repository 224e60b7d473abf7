"""A retraining pull request body stays within GitHub's 65,536-character limit however long the
evidence and the predictions diff are: each is cut to its share, changed rows stay first, and the
body says where the rest is."""

from __future__ import annotations

from gitops_ml.edits.plans import EditKind, EditPlan
from gitops_ml.edits.prbody import Evidence, evidence_section, render_body
from gitops_ml.local.predictions import Answer, PredictionsDiff, Row, to_markdown
from gitops_ml.types import ModelName, Version


def test_long_evidence_and_a_long_predictions_diff_fit_one_body() -> None:
    rows = tuple(
        Row(i, [i, i + 0.5] * 40, i % 3, (i + 1) % 3 if i % 7 == 0 else i % 3, i % 7 == 0) for i in range(10_000)
    )
    diff = PredictionsDiff(
        "iris", "1.0.0", "1.1.0", "sample.json", "predictions", Answer(200, {}), Answer(200, {}), rows
    )
    predictions = to_markdown(diff)
    report = (
        "### gitops-ml monitor: iris 1.0.0 in prod — threshold crossed\n\n"
        + "| x | y |\n|---|---|\n"
        + "| feature | drifted |\n" * 20_000
    )
    evidence = evidence_section([Evidence("#12 drift", report, "#12"), Evidence("#14 drift", report, "#14")])
    plan = EditPlan(
        EditKind.BUMP,
        ModelName("iris"),
        Version.parse("1.0.0"),
        Version.parse("1.1.0"),
        (),
        (),
        "Bump iris to 1.1.0",
        "b",
    )
    body = render_body(plan, "```diff\n" + "+ line\n" * 50_000 + "```", evidence=evidence, predictions=predictions)

    assert len(body.encode()) <= 65_536
    assert (
        "This retraining was started by #12, #14." in body
        and body.count("_… cut; the issue has the whole report._") == 2
    )
    table = [
        line
        for line in body[body.index("#### Predictions") :].splitlines()
        if line.startswith("| ") and "**changed**" in line
    ]
    assert (
        len(table) == 50 and table[0].startswith("| 0 | ") and table[1].startswith("| 7 | ")
    )  # changed rows first, in order
    assert "**Agreement: 8571 of 10000 rows (85.7 %)**; 1429 changed." in body
    assert "… 9950 more row(s) not shown (1379 of them changed)." in body
    assert (
        "#### Rendered manifests" in body
        and "(cut: run `gitops-ml diff --base <base branch>` for the whole diff)" in body
    )
