"""The GitOps engine's objects of an environment: Argo CD AppProject + Applications, or Flux
GitRepository + Kustomizations. Each names the overlay path that the engine runs `kustomize build` on.

Paths are relative to the repository root (`<renderRoot>/apps/<env>/<model>`), because that is
what the engine sees after cloning `source.url`.
"""

from __future__ import annotations

from typing import Any

from gitops_ml.render.objects import ENV_LABEL, MANAGED_BY
from gitops_ml.render.planning import Endpoint
from gitops_ml.types import Environment, ModelName, RepositorySpec, RolloutController

Obj = dict[str, Any]

ARGOCD_FINALIZER = "resources-finalizer.argocd.argoproj.io"

# every kind an endpoint renders, so that the AppProject allows exactly these and nothing else
NAMESPACED_KINDS = (
    ("", "ConfigMap"),
    ("", "Service"),
    ("", "ServiceAccount"),
    ("apps", "Deployment"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("policy", "PodDisruptionBudget"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("networking.k8s.io", "Ingress"),
    ("gateway.networking.k8s.io", "HTTPRoute"),
    ("external-secrets.io", "ExternalSecret"),
    ("keda.sh", "ScaledObject"),
    ("argoproj.io", "Rollout"),
    ("argoproj.io", "AnalysisTemplate"),
    ("monitoring.coreos.com", "PodMonitor"),
    ("monitoring.coreos.com", "PrometheusRule"),
)
# Argo Rollouts' Gateway API plugin moves a route's weights: Argo CD must neither report nor undo that
ROUTE_WEIGHTS = {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "jqPathExpressions": [".spec.rules[].backendRefs[].weight"]}


def overlay_path(repo: RepositorySpec, env: str, model: str) -> str:
    return f"{repo.render_root}/apps/{env}/{model}"


def engine_labels(repo: RepositorySpec, env: Environment) -> dict[str, str]:
    labels = dict(env.labels)
    labels.update({"app.kubernetes.io/part-of": repo.name, "app.kubernetes.io/managed-by": MANAGED_BY, ENV_LABEL: env.name})
    return labels


def project_name(repo: RepositorySpec, env: Environment) -> str:
    return f"{repo.name}-{env.name}"


def object_name(env: Environment, model: ModelName) -> str:
    # engine objects of every environment share one namespace (argocd, flux-system): prefix the environment
    return f"{env.name}-{model}"


# --- Argo CD -------------------------------------------------------------------------------------


def app_project(repo: RepositorySpec, env: Environment) -> Obj:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": project_name(repo, env), "namespace": env.engine_namespace, "labels": engine_labels(repo, env)},
        "spec": {
            "description": f"Model endpoints of {repo.name} in environment {env.name}",
            "sourceRepos": [repo.source_url],
            "destinations": [{"server": env.cluster, "namespace": env.namespace}],
            # CreateNamespace=true needs the Namespace kind; nothing else cluster-wide
            "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
            "namespaceResourceWhitelist": [{"group": g, "kind": k} for g, k in NAMESPACED_KINDS],
        },
    }


def _sync_policy(env: Environment, ignores: bool = False) -> Obj:
    sync: Obj = {"syncOptions": ["CreateNamespace=true", *(["RespectIgnoreDifferences=true"] if ignores else [])]}
    if env.auto_sync:
        # prune removes what a PR deleted; selfHeal undoes hand edits in the cluster (git is the truth)
        sync["automated"] = {"prune": True, "selfHeal": True}
    return sync


def _application_body(repo: RepositorySpec, env: Environment, model: str, path: str, route_weights: bool = False) -> tuple[Obj, Obj]:
    """(metadata, spec) of the Application of one endpoint; `model` and `path` may be template fields."""
    metadata: Obj = {
        "name": object_name(env, ModelName(model)),
        "namespace": env.engine_namespace,
        "labels": {**engine_labels(repo, env), "app.kubernetes.io/name": model},
        # deleting the Application (the model left this environment) deletes its objects too
        "finalizers": [ARGOCD_FINALIZER],
    }
    spec: Obj = {
        "project": project_name(repo, env),
        "source": {"repoURL": repo.source_url, "targetRevision": repo.source_branch, "path": path},
        "destination": {"server": env.cluster, "namespace": env.namespace},
        "syncPolicy": _sync_policy(env, route_weights),
    }
    if route_weights:
        spec["ignoreDifferences"] = [dict(ROUTE_WEIGHTS)]
    return metadata, spec


def application(repo: RepositorySpec, ep: Endpoint) -> Obj:
    metadata, spec = _application_body(repo, ep.environment, ep.model, overlay_path(repo, ep.environment.name, ep.model), ep.argo_rollouts)
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": metadata, "spec": spec}


def application_set(repo: RepositorySpec, env: Environment) -> Obj:
    """One Application per overlay directory of the environment, generated by Argo CD from git.

    The generated Applications are the ones `application` would render: same names, labels, project,
    destination and sync policy. Go templates with missingkey=error, so a typo fails loudly.
    """
    argo = env.rollout_controller is RolloutController.ARGO_ROLLOUTS
    metadata, spec = _application_body(repo, env, "{{ .path.basename }}", "{{ .path.path }}", argo)
    metadata.pop("namespace")
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": project_name(repo, env), "namespace": env.engine_namespace, "labels": engine_labels(repo, env)},
        "spec": {
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [
                {
                    "git": {
                        "repoURL": repo.source_url,
                        "revision": repo.source_branch,
                        "directories": [{"path": f"{repo.render_root}/apps/{env.name}/*"}],
                    }
                }
            ],
            "template": {"metadata": metadata, "spec": spec},
        },
    }


# --- Flux ----------------------------------------------------------------------------------------


def namespace(repo: RepositorySpec, env: Environment) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": env.namespace, "labels": engine_labels(repo, env)}}


def git_repository(repo: RepositorySpec, env: Environment) -> Obj:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": project_name(repo, env), "namespace": env.engine_namespace, "labels": engine_labels(repo, env)},
        "spec": {"interval": "1m", "url": repo.source_url, "ref": {"branch": repo.source_branch}},
    }


def flux_kustomization(repo: RepositorySpec, ep: Endpoint) -> Obj:
    env = ep.environment
    spec: Obj = {
        "interval": "10m",
        "retryInterval": "1m",
        "timeout": "5m",
        "path": "./" + overlay_path(repo, env.name, ep.model),
        "sourceRef": {"kind": "GitRepository", "name": project_name(repo, env)},
        "targetNamespace": env.namespace,
        # prune deletes what a PR removed; wait holds the Ready condition until every object it
        # applied is healthy (Flux ignores healthChecks when wait is on, so none are listed)
        "prune": True,
        "wait": True,
    }
    if not env.auto_sync:
        spec["suspend"] = True
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {
            "name": object_name(env, ep.model),
            "namespace": env.engine_namespace,
            "labels": {**engine_labels(repo, env), "app.kubernetes.io/name": ep.model},
        },
        "spec": spec,
    }
