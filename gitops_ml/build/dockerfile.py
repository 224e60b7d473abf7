"""The Dockerfile of an image, from the Jinja2 template: layers ordered by how often they change
(base, dependencies, runtime, scoring code, artifact).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitops_ml import __version__
from gitops_ml.build.plan import ImagePlan
from gitops_ml.errors import (
    ConfigError,
)
from gitops_ml.repo import catalog
from gitops_ml.serving.builtins.catalog import builtin_env

if TYPE_CHECKING:
    pass


VENV = "/opt/gitops-ml/venv"
RUNTIME_DIR = "/opt/gitops-ml/runtime"
USER, UID = "gitops-ml", 10001
TEMPLATE = "Dockerfile.j2"


def _docker_quote(value: object) -> str:
    text = str(value)
    if "\n" in text or "\r" in text:
        text = " ".join(text.split())
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def render_dockerfile(plan: ImagePlan) -> str:
    """Dockerfile text from templates/Dockerfile.j2 (StrictUndefined: a missing value is an error)."""
    import jinja2  # noqa: PLC0415 - imported on use: `build --push` of an unchanged model must start fast

    from gitops_ml.serving import settings as serving  # noqa: PLC0415 - the serving package imports numpy

    directory = catalog.data_dir("templates")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)), undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["docker_quote"] = _docker_quote
    manifest = plan.version.entry.manifest
    try:
        return env.get_template(TEMPLATE).render(
            runtime_version=__version__,
            model=plan.model,
            version=str(plan.version.version),
            base_image=plan.base_image,
            venv=VENV,
            runtime_dir=RUNTIME_DIR,
            user=USER,
            uid=UID,
            model_dir=serving.MODEL_DIR,
            port=serving.PORT,
            readiness_path=serving.READINESS_PATH,
            # a built-in scorer is named to the server here: the image does not parse manifest.yaml
            env={**builtin_env(manifest.builtin, plan.version.entry.spec.artifact.path, manifest.probabilities), **manifest.env},
            labels=plan.labels,
        )
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{directory / TEMPLATE}:{exc.lineno}: template error: {exc.message}") from exc
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"{directory / TEMPLATE}: template error: {exc.message}") from exc
