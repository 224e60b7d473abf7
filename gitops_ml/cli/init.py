"""`gitops-ml init DIR`: scaffold a repository that validates, renders and serves as is."""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from pathlib import Path

import click

from gitops_ml.cli._common import handle_errors
from gitops_ml.errors import ConfigError, UsageError
from gitops_ml.scaffold.repository import InitRequest, scaffold
from gitops_ml.types import Engine


def write_tree(directory: Path, files: dict[str, bytes]) -> None:
    """Write every file into a sibling temporary directory, then move it into place: a failure
    leaves no half-made repository behind."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} exists and is not a directory", hint="init writes a new repository; pick a new directory")
    if directory.exists() and any(directory.iterdir()):
        raise UsageError(f"{directory} exists and is not empty", hint="init writes a new repository; pick a new directory")
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        # mkdtemp makes 0700; the repository gets what the umask gives any new directory
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
    except OSError as exc:
        raise ConfigError(f"cannot create {directory}: {exc.strerror or exc}") from None
    try:
        for rel, data in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if directory.exists():
            directory.rmdir()
        os.replace(staging, directory)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ConfigError(f"cannot write {directory}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--engine", type=click.Choice([e.value for e in Engine]), default="argocd", show_default=True, help="GitOps engine that applies the rendered manifests.")
@click.option("--registry", default="", metavar="R", help="Image registry and prefix, e.g. ghcr.io/acme/models.")
@click.option("--name", default="", help="Repository name (a DNS-1123 label); default: from DIRECTORY.")
@click.option("--source-url", default="", help="Clone URL the GitOps engine pulls this repository from.")
def command(directory: Path, engine: str, registry: str, name: str, source_url: str) -> None:
    """Create a new gitops-ml repository in DIRECTORY: one model (iris) with a tiny trained
    artifact, environments staging and prod, schemas for editors, a pre-commit hook and CI workflows."""
    with handle_errors():
        files = scaffold(InitRequest(directory, Engine(engine), registry, name, source_url))
        write_tree(directory, files)
        click.echo(f"created {directory} ({len(files)} files)")
        click.echo("next:")
        git = "git add -A . && git commit -m 'Initial models'"
        if not _inside_git_work_tree(directory):
            git = "git init -b main && " + git
        click.echo(f"  cd {shlex.quote(str(directory))} && {git}")
        click.echo("  gitops-ml validate && gitops-ml render")


def _inside_git_work_tree(directory: Path) -> bool:
    return any((p / ".git").exists() for p in (directory.absolute(), *directory.absolute().parents))
