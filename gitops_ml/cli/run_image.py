"""`gitops-ml run-image`: test a built image locally with an environment's settings and the sample."""

from __future__ import annotations

import dataclasses

import click

from gitops_ml.build.plan import BuildOptions, plan_images
from gitops_ml.build.run_image import RunResult, run_image
from gitops_ml.cli._common import handle_errors, print_json, progress_line, repository_options
from gitops_ml.errors import UsageError
from gitops_ml.repo.handle import Repository
from gitops_ml.serving.settings import ServerSettings
from gitops_ml.types import EnvironmentName, ModelName, Version
from gitops_ml.validate.rules import require_specs


@dataclasses.dataclass(frozen=True)
class RunRequest:
    repo: Repository
    model: ModelName
    environment: EnvironmentName | None
    version: Version | None
    registry: str
    base_image: str
    keep: bool
    port: int | None
    timeout: float


def execute(request: RunRequest) -> RunResult:
    repository = request.repo
    specs = require_specs(repository, "the repository does not validate; run `gitops-ml validate`")
    if request.model not in specs.models:
        raise UsageError(f"unknown model {request.model!r} (known: {', '.join(sorted(specs.models))})")
    deployment = None
    version = request.version
    if request.environment:
        found = [d for d in specs.deployments if d.environment == request.environment and d.model == request.model]
        if not found:
            raise UsageError(f"no deployment of {request.model} in environment {request.environment!r}")
        deployment = found[0]
        version = version or deployment.pin.version
    options = BuildOptions(models=(request.model,), version=version, registry=request.registry, base_image=request.base_image)
    plan = plan_images(repository, specs, options)[0]
    entry = plan.version.entry
    settings = ServerSettings.from_specs(entry.spec, entry.manifest, deployment)
    return run_image(plan, settings, progress=progress_line, keep=request.keep, host_port=request.port, timeout=request.timeout)


@click.command("run-image")
@click.argument("model")
@repository_options()
@click.option("--env", "environment", metavar="E", help="Use this environment's runtime settings and version pin.")
@click.option("--version", metavar="V", help="Run this version (default: the pin of --env, else the working tree's).")
@click.option("--registry", envvar="GITOPS_ML_REGISTRY", default="", metavar="R", help="Registry override, as given to `build`.")
@click.option("--base-image", envvar="GITOPS_ML_BASE_IMAGE", default="", metavar="IMAGE", help="Base image override, as given to `build`.")
@click.option("--keep", is_flag=True, help="Leave the container running; print a curl command to call it and how to stop it.")
@click.option("--port", type=int, help="Host port on 127.0.0.1 (default: a free one).")
@click.option("--timeout", type=float, default=180.0, show_default=True, help="Seconds to wait for readiness.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format.")
def command(
    model: str, repo: Repository, environment: str | None, version: str | None, registry: str, base_image: str,
    keep: bool, port: int | None, timeout: float, fmt: str,
) -> None:
    """Run MODEL's built image locally, score its sample and stop it (the "test containers locally" step).

    The container gets the runtime settings of --env (or the defaults) and a freshly generated API key;
    exits 1 when the sample is not scored with HTTP 200. With --keep it stays running and the curl
    command to call it again is printed (in JSON, `curl` is null without --keep).
    """
    with handle_errors():
        try:
            parsed = Version.parse(version) if version else None
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        request = RunRequest(
            repo, ModelName(model), EnvironmentName(environment) if environment else None, parsed,
            registry, base_image, keep, port, timeout,
        )
        result = execute(request)
        # the curl command carries the container's key: offered only while the container runs
        if fmt == "json":
            print_json({**dataclasses.asdict(result), "curl": result.curl if result.kept else None})
        else:
            click.echo(f"{result.ref}: POST {result.url} -> HTTP {result.status}")
            click.echo(result.body)
            if result.kept:
                click.echo(f"repeat: {result.curl}")
                click.echo(f"running as {result.container}; stop it with: docker rm -f {result.container} && rm -r {result.keys_dir}")
            else:
                click.echo(f"the container {result.container} was removed; run again with --keep to leave it running and get a curl command to repeat the call")
        if result.status != 200:
            click.get_current_context().exit(1)
