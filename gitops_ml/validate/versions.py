"""Version rules between a base revision and the working tree (design §3): a changed model
directory needs a version bump, an incompatible input schema a MAJOR one. Never prints.
"""

from __future__ import annotations

from typing import Any

from gitops_ml.errors import LoadError
from gitops_ml.repo.loading import Document, RepositoryTree, load_tree
from gitops_ml.repo.sources import FileSource
from gitops_ml.types import Finding, Version
from gitops_ml.validate.compat import schema_breaks
from gitops_ml.validate.specs import Report


def _model_fingerprint(source: FileSource, model_dir: str) -> dict[str, bytes]:
    return {p: source.read(p) for p in source.walk_files(model_dir)}


def version_findings(head: RepositoryTree, head_report: Report, base: FileSource, base_label: str) -> list[Finding]:
    """Findings of the version rules (design §3) between base and head."""
    out: list[Finding] = []
    base_tree = load_tree(base)
    for name, files in sorted(head.models.items()):
        if files.model is None or not isinstance(files.model.data, dict):
            continue
        base_files = base_tree.models.get(name)
        if base_files is None or base_files.model is None or not isinstance(base_files.model.data, dict):
            continue  # a new model starts at any version
        head_v, base_v = files.model.data.get("version"), base_files.model.data.get("version")
        if not (Version.is_valid(str(head_v)) and Version.is_valid(str(base_v))):
            continue
        hv, bv = Version.parse(str(head_v)), Version.parse(str(base_v))
        where = files.model.locate(["version"])
        if hv < bv:
            out.append(Finding(where, f"version of {name} went down from {bv} ({base_label}) to {hv}"))
            continue
        changed = _model_fingerprint(head.source, files.dir) != _model_fingerprint(base, base_files.dir)
        manifest, base_manifest = files.manifest, base_files.manifest
        if not changed or manifest is None or base_manifest is None:
            breaks = []
        else:
            breaks = _schema_breaks(head, files.dir, manifest, base_tree, base_files.dir, base_manifest)
        if changed and hv == bv:
            # the hint names the version that satisfies every rule, a schema break's MAJOR included
            needed = hv.bump("major") if breaks else hv.bump("patch")
            why = f" (the input schema changed incompatibly: {'; '.join(breaks[:3])})" if breaks else ""
            out.append(
                Finding(where, f"models/{name}/ changed since {base_label} but its version is still {hv}{why}", hint=f"bump it: `gitops-ml bump {name}` or set version to {needed} or higher")
            )
            continue
        if breaks and hv.major == bv.major:
            out.append(
                Finding(
                    where,
                    f"input schema of {name} changed incompatibly since {base_label} ({'; '.join(breaks[:3])}) but the version went from {bv} to {hv} without a MAJOR bump",
                    hint=f"set version to {bv.bump('major')}: old requests may fail",
                )
            )
    return out


def _schema_breaks(head: RepositoryTree, head_dir: str, manifest: Document, base: RepositoryTree, base_dir: str, base_manifest: Document) -> list[str]:
    def schema_of(tree: RepositoryTree, model_dir: str, doc: Document) -> Any:
        rel = doc.data.get("schema") if isinstance(doc.data, dict) else None
        if not rel:
            return None
        try:
            return tree.read_document(f"{model_dir}/{rel}", json_doc=True).data
        except (LoadError, OSError):
            return None

    old, new = schema_of(base, base_dir, base_manifest), schema_of(head, head_dir, manifest)
    if old is None or new is None:
        return []
    return schema_breaks(old, new)
