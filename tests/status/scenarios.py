"""Cluster states for the status tests, each made from the example's rendered objects."""

from __future__ import annotations

from typing import Any

from render.render_helpers import run

from tests.status import live
from tests.status.kube_server import KubeServer

Obj = dict[str, Any]


def replicas_of(objects: dict[str, Obj]) -> int:
    if "HorizontalPodAutoscaler" in objects:
        return int(objects["HorizontalPodAutoscaler"]["spec"]["minReplicas"])
    return int(objects["Deployment"]["spec"].get("replicas", 1))


def deploy(kube: KubeServer, rendered: live.Rendered, *, skip: tuple[tuple[str, str], ...] = ()) -> None:
    """Every endpoint of a render applied, rolled out and synced at the render's commit."""
    kinds = {obj["kind"] for obj in rendered.engines.values()}
    kube.serve_crds(*kinds)
    for key, objects in sorted(rendered.endpoints.items()):
        if key in skip:
            continue
        for obj in live.healthy(objects, replicas_of(objects)):
            kube.put(obj)
        engine = rendered.engine(*key)
        if engine["kind"] == "Application":
            kube.put(live.application(engine, revision=rendered.head))
        else:
            kube.put(live.kustomization(engine, revision=rendered.head))


def status(*args: str) -> Any:
    """`gitops-ml status ARGS` in process."""
    return run("status", *args)


def lines_of(output: str) -> dict[str, str]:
    """Endpoint lines of the text report by endpoint ("prod/iris"), with runs of spaces made one
    (columns are as wide as their widest cell); an ok line starts with its endpoint."""
    out = {}
    for line in output.splitlines()[2:]:
        if line[:1] in " !~*-+x" and line[1:2] == " " and not line.startswith("    "):
            text = " ".join(line.split())
            out[text.split()[1] if line[0] != " " else text.split()[0]] = text
    return out
