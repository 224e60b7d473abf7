"""The workflows pin the gitops-ml that generated them: image tags carry its version, so CI running a
newer release would fail `render --check` and push tags that deploy/ does not reference."""

from __future__ import annotations

import re

import yaml

from gitops_ml import __version__
from gitops_ml.scaffold.workflows import render_workflows

# the monitor workflow installs the same release with the extras that read captures from a store
EXTRAS = {"gitops-ml-monitor.yml": "[monitor,s3]"}


def _extras(rel: str) -> str:
    return EXTRAS.get(rel.rsplit("/", 1)[-1], "")


def _install_steps(text: str) -> list[dict[str, object]]:
    doc = yaml.safe_load(text)
    return [step for job in doc["jobs"].values() for step in job["steps"] if step.get("name") == "Install gitops-ml"]


def test_generated_workflows_install_exactly_this_version_and_say_how_to_upgrade() -> None:
    files = render_workflows(engine="argocd", registry="ghcr.io/acme/models")
    for rel, text in files.items():
        steps = _install_steps(text)
        assert steps, rel
        for step in steps:
            assert step["run"] == f'python -m pip install "gitops-ml{_extras(rel)}=={__version__}"', (rel, step)
        assert not re.search(r'pip install "gitops-ml"', text), rel
        assert "bump" in text and "re-render" in text, f"{rel}: no note on upgrading deliberately"


def test_reusable_workflows_take_the_version_as_an_input_pinned_by_default() -> None:
    files = render_workflows(engine="argocd", registry="ghcr.io/acme/models", reusable=True)
    for rel, text in files.items():
        inputs = yaml.safe_load(text)[True]["workflow_call"]["inputs"]
        assert inputs["gitops-ml-version"]["default"] == __version__, rel
        assert inputs["gitops-ml-version"]["type"] == "string"
        for step in _install_steps(text):
            env = step["env"]
            assert env["VERSION"] == "${{ inputs.gitops-ml-version }}", rel
            assert f"gitops-ml{_extras(rel)}==$VERSION" in str(step["run"]), rel
