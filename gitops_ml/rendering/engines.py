"""The GitOps engine's objects of an environment: Argo CD AppProject + Applications, or Flux
GitRepository + Kustomizations. Each names the overlay path that the engine runs `kustomize build` on.

Paths are relative to the repository root (`<renderRoot>/apps/<env>/<model>`), because that is
what the engine sees after cloning `source.url`.
"""

from __future__ import annotations

from typing import Any

from gitops_ml.planning import Endpoint
from gitops_ml.rendering.objects import ENV_LABEL, MANAGED_BY
from gitops_ml.types import Environment, ModelName, RepositorySpec

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
)


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


def application(repo: RepositorySpec, ep: Endpoint) -> Obj:
    env = ep.environment
    sync: Obj = {"syncOptions": ["CreateNamespace=true"]}
    if env.auto_sync:
        # prune removes what a PR deleted; selfHeal undoes hand edits in the cluster (git is the truth)
        sync["automated"] = {"prune": True, "selfHeal": True}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": object_name(env, ep.model),
            "namespace": env.engine_namespace,
            "labels": {**engine_labels(repo, env), "app.kubernetes.io/name": ep.model},
            # deleting the Application (the model left this environment) deletes its objects too
            "finalizers": [ARGOCD_FINALIZER],
        },
        "spec": {
            "project": project_name(repo, env),
            "source": {"repoURL": repo.source_url, "targetRevision": repo.source_branch, "path": overlay_path(repo, env.name, ep.model)},
            "destination": {"server": env.cluster, "namespace": env.namespace},
            "syncPolicy": sync,
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
        # prune deletes what a PR removed; wait holds the Ready condition until every object is healthy
        "prune": True,
        "wait": True,
        # listed for `flux get` readers and for the day wait is switched off; with wait they are implied
        "healthChecks": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": ep.model, "namespace": env.namespace}],
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
