"""Images assembled from layer tars and an image config written here, then loaded into the Docker engine.

No Dockerfile step runs: the layers were written deterministically on the host and the config has no
build times or container ids, so the same commit gives the same image ID (and pushed digest) on any
machine. What the settings say (user, environment, labels, health check, entrypoint) is shared with
the Dockerfile that `--context-only` writes. Never prints.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from gitops_ml.adapters.docker import DockerEngine
from gitops_ml.build.layers import RUNTIME_DIR, UID, VENV, Layer
from gitops_ml.build.plan import ImagePlan, Progress
from gitops_ml.errors import DockerError, Location


@dataclass(frozen=True)
class BaseImage:
    """What the build needs of the base image: its identity, config, layers, Python and user files."""

    ref: str
    id: str
    architecture: str
    os: str
    env: tuple[str, ...]
    labels: dict[str, str]
    workdir: str
    diff_ids: tuple[str, ...]
    python_path: str
    passwd: bytes
    group: bytes


@dataclass(frozen=True)
class Settings:
    """The image's runtime settings, written into the config here and into the Dockerfile's steps."""

    env: tuple[tuple[str, str], ...]
    labels: dict[str, str]
    entrypoint: tuple[str, ...]
    user: str
    port: int
    healthcheck: tuple[str, ...]


def image_settings(plan: ImagePlan) -> Settings:
    from gitops_ml.serving import settings as serving  # noqa: PLC0415 - the serving package imports numpy
    from gitops_ml.serving.builtins.catalog import builtin_env  # noqa: PLC0415

    manifest = plan.version.entry.manifest
    env = [
        ("PATH", f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        ("PYTHONPATH", RUNTIME_DIR),
        ("PYTHONDONTWRITEBYTECODE", "1"),
        ("PYTHONUNBUFFERED", "1"),
        ("HOME", "/tmp"),
        ("GITOPS_ML_MODEL_DIR", serving.MODEL_DIR),
        ("GITOPS_ML_PORT", str(serving.PORT)),
        ("GITOPS_ML_MODEL_NAME", str(plan.model)),
        ("GITOPS_ML_MODEL_VERSION", str(plan.version.version)),
        # the image does not parse manifest.yaml: the files it names, or the built-in scorer, are told here
        *[(f"GITOPS_ML_{name}", value) for name, value in (
            ("SCRIPT", manifest.script), ("SCHEMA", manifest.schema), ("SAMPLE", manifest.sample), ("OUTPUT_SCHEMA", manifest.output_schema),
        ) if value],
        *sorted(builtin_env(manifest.builtin, plan.version.entry.spec.artifact.path, manifest.probabilities).items()),
        *sorted(manifest.env.items()),
    ]
    probe = (f"import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('GITOPS_ML_PORT', "
             f"'{serving.PORT}') + '{serving.READINESS_PATH}', timeout=2)")
    return Settings(tuple(env), dict(plan.labels), (f"{VENV}/bin/python", "-m", "gitops_ml.serving"), f"{UID}:{UID}", serving.PORT,
                    (f"{VENV}/bin/python", "-c", probe))


PYTHON_DIRS = ("/usr/local/bin", "/usr/bin")
BASE_HINT = (
    "set image.baseImage in gitops-ml.yaml (or pass --base-image) to a Debian-based image with python3 "
    "(glibc 2.36 or newer); with no registry at hand, make one from Debian: `mmdebstrap --variant=apt "
    "--include=python3 bookworm base.tar && docker import base.tar python-base:bookworm`"
)


def inspect_base(engine: DockerEngine, ref: str, python: str, cache: Path, where: Location) -> BaseImage:
    """The base image as the engine has it; its Python, passwd and group are read once per image id."""
    info = engine.image_info(ref)
    image_id = str(info["Id"])
    probe = cache / "bases" / f"{image_id.removeprefix('sha256:')}-py{python}.json"
    if probe.is_file():
        found = json.loads(probe.read_text(encoding="utf-8"))
    else:
        candidates = [f"{d}/python{python}" for d in PYTHON_DIRS]
        files = engine.read_image_files(ref, [*candidates, "/etc/passwd", "/etc/group"])
        python_path = next((c for c in candidates if files.get(c) is not None), "")
        if not python_path:
            raise DockerError(
                f"base image {ref} has no python{python} ({' or '.join(candidates)}), the Python this model runs on",
                location=where, hint=BASE_HINT)
        found = {"python": python_path, "passwd": (files.get("/etc/passwd") or b"").decode("utf-8", "replace"),
                 "group": (files.get("/etc/group") or b"").decode("utf-8", "replace")}
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text(json.dumps(found), encoding="utf-8")
    config = info.get("Config") or {}
    return BaseImage(
        ref, image_id, str(info.get("Architecture") or "amd64"), str(info.get("Os") or "linux"), tuple(config.get("Env") or ()),
        dict(config.get("Labels") or {}), str(config.get("WorkingDir") or ""), tuple(info.get("RootFS", {}).get("Layers") or ()),
        found["python"], found["passwd"].encode("utf-8"), found["group"].encode("utf-8"),
    )


def _merge_env(base: Sequence[str], ours: Sequence[tuple[str, str]]) -> list[str]:
    """Docker's ENV semantics: a variable the base sets is replaced in place, new ones are appended."""
    out = list(base)
    for key, value in ours:
        item = f"{key}={value}"
        index = next((i for i, e in enumerate(out) if e.split("=", 1)[0] == key), None)
        if index is None:
            out.append(item)
        else:
            out[index] = item
    return out


def image_config(base: BaseImage, settings: Settings, layers: Sequence[Layer], created: int, runtime_version: str) -> bytes:
    """The OCI/Docker image config: canonical JSON (sorted keys, no spaces) with no build-time values."""
    when = datetime.datetime.fromtimestamp(created, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    seconds = 1_000_000_000
    history: list[dict[str, object]] = [{"created": when, "created_by": f"base image {base.ref}", "comment": base.id} for _ in base.diff_ids]
    history += [{"created": when, "created_by": f"gitops-ml {runtime_version}: {layer.name} layer"} for layer in layers]
    history.append({"created": when, "created_by": f"gitops-ml {runtime_version}: settings", "empty_layer": True})
    config = {
        "architecture": base.architecture,
        "os": base.os,
        "created": when,
        "config": {
            "User": settings.user,
            "Env": _merge_env(base.env, settings.env),
            "Entrypoint": list(settings.entrypoint),
            "ExposedPorts": {f"{settings.port}/tcp": {}},
            "Labels": {**base.labels, **settings.labels},
            "WorkingDir": base.workdir,
            "Healthcheck": {"Test": ["CMD", *settings.healthcheck], "Interval": 10 * seconds, "Timeout": 3 * seconds,
                            "StartPeriod": 30 * seconds, "Retries": 3},
        },
        "rootfs": {"type": "layers", "diff_ids": [*base.diff_ids, *(layer.diff_id for layer in layers)]},
        "history": history,
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode("utf-8")


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The layer store's chain ids: a layer is identified by itself and everything below it."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


def archive_chunks(config: bytes, base: BaseImage, layers: Sequence[Layer], ref: str, skip: set[str]) -> Iterator[bytes]:
    """A docker-save archive as a stream: the layer tars whose chain ids are not in skip (the engine already
    has those, and `docker load` never opens a layer it has), the config and manifest.json. Streamed so
    that a large dependency layer is not copied once more on its way to the engine."""
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    names = [f"base-{i}/layer.tar" for i in range(len(base.diff_ids))] + [f"{layer.name}/layer.tar" for layer in layers]
    chains = chain_ids([*base.diff_ids, *(layer.diff_id for layer in layers)])
    for layer, name, chain in zip(layers, names[len(base.diff_ids):], chains[len(base.diff_ids):]):
        if chain in skip:
            continue
        size = layer.path.stat().st_size
        yield _header(name, size)
        with open(layer.path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk
        yield _padding(size)
    manifest = json.dumps([{"Config": config_name, "RepoTags": [ref], "Layers": names}]).encode("utf-8")
    for name, data in ((config_name, config), ("manifest.json", manifest)):
        yield _header(name, len(data)) + data + _padding(len(data))
    yield b"\0" * 1024


_CHUNK = 1 << 20


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode = size, 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def load_image(engine: DockerEngine, config: bytes, base: BaseImage, layers: Sequence[Layer], ref: str, *, cache: Path,
               progress: Progress) -> str:
    """Load the image into the engine under ref; its id (the config's sha256).

    Layers this engine got from an earlier load (recorded per engine in the cache) are left out of the
    archive; if the engine lost them since, the load is repeated with every layer.
    """
    record = cache / "engines" / f"{engine.engine_id().replace(':', '_')}.chains"
    known = set(record.read_text(encoding="utf-8").split()) if record.is_file() else set()
    chains = chain_ids([*base.diff_ids, *(layer.diff_id for layer in layers)])
    try:
        engine.load(archive_chunks(config, base, layers, ref, known), progress=progress)
    except DockerError:
        if not known:
            raise
        engine.load(archive_chunks(config, base, layers, ref, set()), progress=progress)
        known = set()
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text("\n".join(sorted(known | set(chains))) + "\n", encoding="utf-8")
    image_id = "sha256:" + hashlib.sha256(config).hexdigest()
    if engine.local_image_id(ref) != image_id:
        raise DockerError(f"docker load did not tag {ref} as {image_id}")
    return image_id
