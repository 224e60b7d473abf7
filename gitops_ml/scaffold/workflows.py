"""GitHub Actions workflows from templates/workflows: pull request checks, publish on the default
branch, scheduled monitoring that turns a crossed threshold into an issue and a retraining run, and
retraining; standalone (written by `gitops-ml init`) or reusable
(`on: workflow_call`, this project's .github/workflows). Pure text; nothing is written here.

Actions are pinned to full commit SHAs of their current major versions; the version is in a comment for
people and for Dependabot. No checkout persists its token: the steps that push get it in their own
environment, so code a job runs before them (build dependencies, the training command) never sees it.
Jobs that read secrets run in an environment, where the secrets belong. The output passes actionlint
and `zizmor --persona auditor`.
"""

from __future__ import annotations

from typing import Callable

import jinja2

from gitops_ml import __version__
from gitops_ml.data import data_dir
from gitops_ml.errors import UsageError

# Node 24 releases; each SHA was read from two independent public pins of the tag
CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1"
SETUP_PYTHON = "actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97 # v7.0.0"
UPLOAD_ARTIFACT = "actions/upload-artifact@043fb46d1a93c77aae656e7c1c64a875d1fc6a0a # v7.0.1"
DOCKER_LOGIN = "docker/login-action@dbcb813823bdd20940b903addbd779551569679f # v4.6.0"

# Environments hold the secrets of the jobs that read them (create them in the repository's settings)
REGISTRY_ENVIRONMENT = "gitops-ml-registry"
RETRAIN_ENVIRONMENT = "gitops-ml-retrain"
MONITOR_ENVIRONMENT = "gitops-ml-monitor"
COSIGN_INSTALLER = "sigstore/cosign-installer@6f9f17788090df1f26f669e9d70d6ae9567deba6 # v4.1.2"

WORKFLOWS = ("gitops-ml-pr.yml", "gitops-ml-main.yml", "gitops-ml-monitor.yml", "gitops-ml-retrain.yml")
ENGINES = ("argocd", "flux")


def _registry_host(registry: str) -> str:
    head = registry.split("/", 1)[0]
    # `user/repo` on Docker Hub has no host part: a host has a dot, a port or is localhost
    return head if ("." in head or ":" in head or head == "localhost") else ""


# Image tags carry the gitops-ml version (imageref's runtime_version): CI must run the release that
# rendered deploy/, or `render --check` fails and `build --push` pushes tags nothing references.
PIN_NOTE = (
    "        # pinned: image tags include the gitops-ml version, so CI must run the one that rendered deploy/.\n"
    "        # Upgrading is a deliberate change: bump the pin (in every gitops-ml workflow), re-render with\n"
    "        # the new version (`gitops-ml render`), and commit both in one pull request.\n"
)


def _setup(reusable: bool, extra: str = "") -> str:
    python = "${{ inputs.python-version }}" if reusable else '"{python}"'
    install = (
        PIN_NOTE
        + "        env:\n          VERSION: ${{ inputs.gitops-ml-version }}\n          INSTALL: ${{ inputs.install }}\n"
        f'        run: python -m pip install "${{INSTALL:-gitops-ml{extra}==$VERSION}}"\n'
        if reusable
        else PIN_NOTE + '        run: python -m pip install "{package}"\n'
    )
    return (
        f"      - uses: {CHECKOUT}\n"
        "        with:\n"
        "          fetch-depth: 0  # versions, pins and --base are read from git history\n"
        "          persist-credentials: false  # a step that pushes gets the token itself; nothing else may read it\n"
        f"      - uses: {SETUP_PYTHON}\n"
        "        with:\n"
        f"          python-version: {python}\n"
        "      - name: Install gitops-ml\n"
        f"{install}"
    ).rstrip("\n")


# Lines of a `run:` script that let git push with $GITHUB_TOKEN for the rest of that step only: the
# header lives in the step's environment, never in .git/config, and its encoded form is masked in logs.
GIT_AUTH = (
    "          auth=$(printf 'x-access-token:%s' \"$GITHUB_TOKEN\" | base64 -w0)\n"
    "          echo \"::add-mask::$auth\"\n"
    "          export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=\"http.$GITHUB_SERVER_URL/.extraheader\" "
    "GIT_CONFIG_VALUE_0=\"AUTHORIZATION: basic $auth\""
)


def _login(registry: str, reusable: bool) -> Callable[[str], str]:
    host = _registry_host(registry)

    def login(condition: str) -> str:
        lines = ["      - name: Log in to the image registry"]
        if condition:
            lines.append(f"        if: {condition}")
        lines += [f"        uses: {DOCKER_LOGIN}", "        with:"]
        if reusable:
            lines += [
                "          registry: ${{ inputs.registry-host }}",
                "          username: ${{ secrets.REGISTRY_USERNAME || github.actor }}",
                "          password: ${{ secrets.REGISTRY_PASSWORD || github.token }}",
            ]
        elif host == "ghcr.io":
            lines += ["          registry: ghcr.io", "          username: ${{ github.actor }}", "          password: ${{ github.token }}"]
        else:
            if host:
                lines.append(f"          registry: {host}")
            lines += ["          username: ${{ secrets.REGISTRY_USERNAME }}", "          password: ${{ secrets.REGISTRY_PASSWORD }}"]
        return "\n".join(lines)

    return login


def render_workflows(
    engine: str,
    registry: str,
    *,
    python: str = "3.11",
    package: str | None = None,
    branch: str = "main",
    training_command: str = "python training/train.py",
    schedule: str = "17 3 * * 1",
    monitor_schedule: str = "41 5 * * *",
    reusable: bool = False,
) -> dict[str, str]:
    """Repository-relative path -> text of each workflow file. `package` is the pip requirement the
    workflows install; by default exactly this gitops-ml release (`gitops-ml==<version>`)."""
    package = package or f"gitops-ml=={__version__}"
    if engine not in ENGINES:
        raise UsageError(f"unknown GitOps engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if not registry or any(c.isspace() for c in registry):
        raise UsageError(f"{registry!r} is not an image registry")
    if "\n" in training_command or '"' in package or "\n" in package:
        raise UsageError("the training command and the package must be one line each")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates") / "workflows")),
        undefined=jinja2.StrictUndefined,
        # GitHub's own `${{ }}` expressions stay as they are
        variable_start_string="[[",
        variable_end_string="]]",
        block_start_string="[%",
        block_end_string="%]",
        comment_start_string="[#",
        comment_end_string="#]",
        keep_trailing_newline=True,
        autoescape=False,
    )
    fill = {"python": python, "package": package}
    # monitor needs the monitor extra (DuckDB, scipy); a package given as a URL or path is the user's to complete
    monitor_package = package.replace("gitops-ml==", "gitops-ml[monitor,s3]==", 1) if package.startswith("gitops-ml==") else package
    context = {
        "origin": "reusable workflow of gitops-ml" if reusable else f"gitops-ml init; engine {engine}, images in {registry}",
        "reusable": reusable,
        "ghcr": reusable or _registry_host(registry) == "ghcr.io",
        "python": python,
        "package": package,
        "version": __version__,
        "branch": branch,
        "training_command": training_command.replace('"', '\\"') if reusable else training_command,
        "schedule": schedule,
        "checkout": CHECKOUT,
        "upload_artifact": UPLOAD_ARTIFACT,
        "cosign_installer": COSIGN_INSTALLER,
        "setup": _setup(reusable).format(**fill) if not reusable else _setup(True),
        "monitor_setup": _setup(False).format(python=python, package=monitor_package) if not reusable else _setup(True, "[monitor,s3]"),
        "monitor_schedule": monitor_schedule,
        "monitor_environment": MONITOR_ENVIRONMENT,
        "git_auth": GIT_AUTH,
        "login": _login(registry, reusable),
        # the login reads secrets unless it is GHCR with the workflow's own token
        "registry_secrets": reusable or _registry_host(registry) != "ghcr.io",
        "registry_environment": REGISTRY_ENVIRONMENT,
        "retrain_environment": RETRAIN_ENVIRONMENT,
    }
    out = {}
    for name in WORKFLOWS:
        try:
            text = env.get_template(f"{name}.j2").render(context)
        except jinja2.TemplateError as exc:
            where = f"{name}.j2:{getattr(exc, 'lineno', '?')}"
            raise UsageError(f"template error in {where}: {exc}") from exc
        out[f".github/workflows/{name}"] = text
    return out


def write_reusable(root: str = ".") -> list[str]:
    """Write this project's reusable workflows (.github/workflows) from the templates."""
    from pathlib import Path  # noqa: PLC0415 - only this maintenance entry point writes

    from gitops_ml.atomic import write_atomic  # noqa: PLC0415

    out = []
    for rel, text in render_workflows(engine="argocd", registry="ghcr.io/acme/models", reusable=True).items():
        write_atomic(Path(root) / rel, text)
        out.append(rel)
    return out


if __name__ == "__main__":
    write_reusable()
