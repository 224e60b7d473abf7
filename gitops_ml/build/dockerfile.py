"""The Dockerfile of a `--context-only` build context, from the Jinja2 template: the layer tars in the
order of how often they change (base, dependencies, runtime, scoring code, artifact) and the settings
`build` writes into its own image config.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from gitops_ml import __version__
from gitops_ml.build.assemble import image_settings
from gitops_ml.build.layers import SBOM_PATH, UID, USER, VENV
from gitops_ml.build.plan import ImagePlan
from gitops_ml.errors import (
    ConfigError,
)
from gitops_ml.repo import catalog

if TYPE_CHECKING:
    pass


TEMPLATE = "Dockerfile.j2"
LAYERS = ("dependencies", "runtime", "code", "artifact")


def _docker_quote(value: object) -> str:
    text = str(value)
    if "\n" in text or "\r" in text:
        text = " ".join(text.split())
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def render_dockerfile(plan: ImagePlan) -> str:
    """Dockerfile text from templates/Dockerfile.j2 (StrictUndefined: a missing value is an error)."""
    import jinja2  # noqa: PLC0415 - imported on use: `build --push` of an unchanged model must start fast

    directory = catalog.data_dir("templates")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)), undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["docker_quote"] = _docker_quote
    env.filters["json"] = json.dumps
    settings = image_settings(plan)
    try:
        return env.get_template(TEMPLATE).render(
            runtime_version=__version__,
            model=plan.model,
            version=str(plan.version.version),
            base_image=plan.base_image,
            python=plan.python,
            venv=VENV,
            user=USER,
            uid=UID,
            sbom_path=SBOM_PATH,
            layers=LAYERS,
            env=settings.env,
            labels=settings.labels,
            port=settings.port,
            user_spec=settings.user,
            healthcheck=list(settings.healthcheck),
            entrypoint=list(settings.entrypoint),
        )
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{directory / TEMPLATE}:{exc.lineno}: template error: {exc.message}") from exc
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"{directory / TEMPLATE}: template error: {exc.message}") from exc
