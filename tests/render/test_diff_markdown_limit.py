"""The Markdown of `diff --format markdown` fits in one GitHub comment (65,536 characters) however
many models change: the summary table first (cut with a count when huge), then as many per-model
sections as fit, then a note naming how many were left out."""

from __future__ import annotations

import re

from gitops_ml.render.diff import MAX_MARKDOWN_CHARS, DiffResult, EndpointChange, FileDiff, format_markdown

GITHUB_LIMIT = 65_536


def _change(env: str, i: int, lines: int) -> EndpointChange:
    body = [f"@@ -1,{lines} +1,{lines} @@\n"] + [
        f"-        image: registry.example.com/ml/model-{i:04d}:1.0.{n}-abcdef0123456789\n" for n in range(lines)
    ]
    return EndpointChange(
        env,
        f"model-{i:04d}",
        "changed",
        f"r/m:1.0.0-{i}",
        f"r/m:1.1.0-{i}",
        "2",
        "3",
        [FileDiff(f"{env}/model-{i:04d}/deployment.yaml", "changed", body)],
    )


def _result(models: int, lines: int) -> DiffResult:
    return DiffResult("origin/main", "deploy", [_change("prod", i, lines) for i in range(models)])


def _size(text: str) -> int:
    return len(text.encode("utf-8"))  # at least the character count, whichever GitHub measures


def test_150_changed_models_stay_under_githubs_limit_with_a_note_on_what_was_left_out() -> None:
    md = format_markdown(_result(150, 60))
    assert _size(md) <= MAX_MARKDOWN_CHARS < GITHUB_LIMIT - 1_000  # room for the marker and a header
    rows = [line for line in md.splitlines() if line.startswith("| prod | model-")]
    assert len(rows) == 150  # the table is whole: it is small enough
    shown = md.count("<details>")
    assert 0 < shown < 150 and md.count("</details>") == shown and md.count("```diff") == shown
    assert md.count("```") % 2 == 0
    assert f"{150 - shown} more sections omitted; run `gitops-ml diff --base origin/main` locally" in md
    assert md.rstrip().endswith("locally._")


def test_a_huge_summary_table_is_cut_with_a_count() -> None:
    md = format_markdown(_result(3_000, 3))
    assert _size(md) <= MAX_MARKDOWN_CHARS
    rows = [line for line in md.splitlines() if line.startswith("| prod | model-")]
    assert 0 < len(rows) < 3_000
    assert re.search(rf"\b{3_000 - len(rows)} more changed models? not listed", md)
    assert "more sections omitted" in md


def test_one_huge_section_is_shown_in_part_rather_than_not_at_all() -> None:
    change = _change("prod", 1, 10)
    change.files[0].lines = [f"+{'x' * 400} {n}\n" for n in range(390)]  # under the line cap, over the size cap
    md = format_markdown(DiffResult("origin/main", "deploy", [change]))
    assert _size(md) <= MAX_MARKDOWN_CHARS
    assert md.count("<details>") == 1 and md.count("</details>") == 1 and md.count("```") == 2
    assert "more line(s); run `gitops-ml diff --base origin/main`" in md


def test_a_small_diff_is_unchanged_by_the_limit() -> None:
    md = format_markdown(_result(3, 10))
    assert md.count("<details>") == 3 and "omitted" not in md and "not listed" not in md
