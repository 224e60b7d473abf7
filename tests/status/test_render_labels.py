"""What render writes into pod templates for status to read, and why it is not a commit id: a
pinned environment's render must not change (and restart its pods) when the working tree moves on."""

from __future__ import annotations

import pytest

from gitops_ml.render.writing import list_files
from gitops_ml.repo.handle import Repository
from gitops_ml.status.desired import load_desired
from tests.status import live

pytestmark = pytest.mark.kustomize


def test_pod_templates_carry_version_image_tag_and_revision(example: live.Rendered) -> None:
    for (_env, model), objects in example.endpoints.items():
        template = objects["Deployment"]["spec"]["template"]
        image = template["spec"]["containers"][0]["image"]
        assert template["metadata"]["labels"]["app.kubernetes.io/version"] == "1.0.0"
        annotations = template["metadata"]["annotations"]
        assert annotations["gitops-ml.dev/version"] == "1.0.0"
        assert annotations["gitops-ml.dev/image-tag"] == image.rsplit(":", 1)[1]
        assert annotations["gitops-ml.dev/revision"] == f"{model}@v1.0.0"
        assert annotations["prometheus.io/scrape"] == "true", "the base's annotations are kept"


def test_a_pinned_environment_renders_the_same_bytes_after_the_working_tree_moves_past_it(
    example: live.Rendered, example_v2: live.Rendered
) -> None:
    """prod pins iris@1.0.0. Before the retrain render read it from the working tree; after, from the
    commit that registered it. Not one byte of prod may differ (a commit id in the template would)."""
    before, after = example.repo.path / "deploy", example_v2.repo.path / "deploy"
    prod = [p for p in list_files(before) if p.startswith(("apps/prod/", "apps/base/", "clusters/prod/"))]
    assert "apps/prod/iris/deployment-patch.yaml" in prod
    assert {p: (after / p).read_bytes() for p in prod} == {p: (before / p).read_bytes() for p in prod}
    staging = example_v2.objects("staging", "iris")["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert (staging["gitops-ml.dev/version"], staging["gitops-ml.dev/revision"]) == ("1.1.0", "iris@v1.1.0")


def test_status_names_the_commit_that_registered_a_version_read_from_history(
    example: live.Rendered, example_v2: live.Rendered
) -> None:
    desired = {(e.environment, e.model): e.stable for e in load_desired(Repository(example_v2.repo.path)).endpoints}
    first = example.repo.git("rev-list", "--max-parents=0", "HEAD").strip()
    assert desired[("prod", "iris")].commit == first and desired[("prod", "iris")].revision == "iris@v1.0.0"
    assert desired[("staging", "iris")].commit is None  # the working tree's version: no commit can be named yet
