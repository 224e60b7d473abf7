"""The pure parts of the registry: the GTO tag grammar and the fold of events into versions and runs."""

from __future__ import annotations

import pytest

from gitops_ml.history.fold import (
    CommitEvents,
    CommitInfo,
    ModelChanged,
    PinChanged,
    fold_history,
)
from gitops_ml.history.tags import VersionTag, format_tag, parse_tag
from gitops_ml.types import Artifact, EnvironmentName, ModelName, ModelPin, ModelSpec, Version

IRIS = ModelName("iris")
PROD = EnvironmentName("prod")
STAGING = EnvironmentName("staging")


def spec(version: str) -> ModelSpec:
    return ModelSpec(IRIS, Version.parse(version), Artifact("model.joblib", "0" * 64, "model.joblib"))


def commit(n: int) -> CommitInfo:
    return CommitInfo(f"{n:040x}", f"2024-01-{n:02d}T12:00:00+00:00", "Ada", "ada@example.com")


def step(n: int, *events: ModelChanged | PinChanged) -> CommitEvents:
    return CommitEvents(commit(n), events)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("iris@v1.2.0", VersionTag(IRIS, Version.parse("1.2.0"))),
        ("iris@v2.0.0-rc.1", VersionTag(IRIS, Version.parse("2.0.0-rc.1"))),
        ("iris@1.2.0", None),  # GTO requires the v
        ("iris#prod#1", None),  # a GTO stage tag
        ("v1.2.0", None),
        ("Iris@v1.2.0", None),
        ("iris@vlatest", None),
    ],
)
def test_parse_tag_reads_only_registration_tags(name, expected):
    assert parse_tag(name) == expected


def test_format_tag_round_trips_and_carries_gto_message():
    tag = VersionTag(IRIS, Version.parse("1.2.0"))
    assert format_tag(IRIS, Version.parse("1.2.0")) == tag.name == "iris@v1.2.0"
    assert parse_tag(tag.name) == tag
    assert tag.message == "Registering artifact iris version v1.2.0"


def test_tracking_environment_follows_the_newest_version_and_a_pin_holds():
    history = fold_history(
        IRIS,
        [
            step(
                1,
                ModelChanged(spec("1.0.0")),
                PinChanged(STAGING, ModelPin(IRIS)),
                PinChanged(PROD, ModelPin.parse("iris@1.0.0")),
            ),
            step(2, ModelChanged(spec("1.1.0"))),
            step(3, PinChanged(PROD, ModelPin.parse("iris@1.1.0"))),
            step(4, PinChanged(PROD, ModelPin.parse("iris@1.0.0"))),  # rollback
        ],
    )
    v100, v110 = history.versions
    assert [(r.environment, r.since.sha[-1], r.until and r.until.sha[-1]) for r in v100.runs] == [
        ("prod", "1", "3"),
        ("staging", "1", "2"),
        ("prod", "4", None),
    ]
    assert [(r.environment, r.since.sha[-1], r.until and r.until.sha[-1]) for r in v110.runs] == [
        ("staging", "2", None),
        ("prod", "3", "4"),
    ]
    assert {env: str(run.version) for env, run in history.running.items()} == {"prod": "1.0.0", "staging": "1.1.0"}


def test_a_version_is_registered_where_it_first_appears_and_edits_without_bump_do_not_move_it():
    history = fold_history(
        IRIS,
        [
            step(1, ModelChanged(spec("1.0.0"))),
            step(2, ModelChanged(spec("1.0.0"))),
            step(3, ModelChanged(spec("1.1.0"))),
        ],
    )
    assert [(str(r.version), r.commit.sha[-1]) for r in history.versions] == [("1.0.0", "1"), ("1.1.0", "3")]
    assert str(history.newest.version) == "1.1.0"


def test_deleted_deployment_ends_its_run_and_unreadable_model_yaml_registers_nothing():
    history = fold_history(
        IRIS,
        [
            step(1, ModelChanged(spec("1.0.0")), PinChanged(STAGING, ModelPin(IRIS))),
            step(2, ModelChanged(None)),  # model.yaml broken: a tracking environment runs nothing known
            step(3, ModelChanged(spec("1.0.1"))),
            step(4, PinChanged(STAGING, None)),
        ],
    )
    assert [str(r.version) for r in history.versions] == ["1.0.0", "1.0.1"]
    assert [(r.since.sha[-1], r.until and r.until.sha[-1]) for r in history.versions[1].runs] == [("3", "4")]
    assert history.running == {}


def test_tags_mark_versions_only_when_they_point_at_the_registering_commit():
    tags = {Version.parse("1.0.0"): commit(1).sha, Version.parse("1.1.0"): commit(3).sha}
    history = fold_history(IRIS, [step(1, ModelChanged(spec("1.0.0"))), step(2, ModelChanged(spec("1.1.0")))], tags)
    assert [(r.tagged, r.tag_commit) for r in history.versions] == [(True, commit(1).sha), (False, commit(3).sha)]
