"""types: semantic version precedence and model pins."""

from __future__ import annotations

import pytest

from gitops_ml.types import ModelPin, Version


def test_semver_precedence() -> None:
    order = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.2.0",
        "1.10.0",
        "2.0.0",
    ]
    parsed = [Version.parse(v) for v in order]
    assert sorted(parsed) == parsed
    assert [str(v) for v in parsed] == order


def test_bump_and_build_metadata() -> None:
    v = Version.parse("1.4.2+build.7")
    assert str(v.bump("major")) == "2.0.0"
    assert str(v.bump("minor")) == "1.5.0"
    assert str(v.bump("patch")) == "1.4.3"
    assert v == Version.parse("1.4.2+other")  # build metadata has no precedence


def test_pins() -> None:
    assert ModelPin.parse("iris").version is None
    assert str(ModelPin.parse("iris@1.2.0").version) == "1.2.0"
    with pytest.raises(ValueError):
        ModelPin.parse("iris@latest")
