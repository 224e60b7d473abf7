"""Derive the CRD schemas that `render --verify` ships from the upstream CRD files (reference data).

    python scripts/derive_crd_schemas.py [--reference ../shared/reference/crds] [--out schemas/crds] [--check]

Each upstream file is checked against the sha256 its README records, then reduced to what validation
needs: group, kind, and per served version the openAPIV3Schema with its structure kept (field names,
types, formats, enums, patterns, bounds, required, x-kubernetes-* markers, x-kubernetes-validations
rules and messages) and the prose dropped (description, example). The output is byte-stable, so a
re-run over the same inputs writes the same files; --check exits 1 when the committed files differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
# shared/ sits beside the clone (CI, the main checkout), or beside the folder of git worktrees
DEFAULT_REFERENCE = next(
    (p / "shared" / "reference" / "crds" for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared" / "reference" / "crds").is_dir()),
    ROOT.parent / "shared" / "reference" / "crds",
)
DEFAULT_OUT = ROOT / "schemas" / "crds"

# the kinds gitops-ml renders, or that the next stages render (rollout, monitoring, autoscaling)
FILES = (
    "argoproj.io_application.yaml",
    "argoproj.io_applicationset.yaml",
    "argoproj.io_appproject.yaml",
    "source.toolkit.fluxcd.io_gitrepositories.yaml",
    "kustomize.toolkit.fluxcd.io_kustomizations.yaml",
    "gateway.networking.k8s.io_httproutes.yaml",
    "gateway.networking.k8s.io_gateways.yaml",
    "external-secrets.io_externalsecrets.yaml",
    "argoproj.io_rollout.yaml",
    "argoproj.io_analysistemplate.yaml",
    "keda.sh_scaledobjects.yaml",
    "monitoring.coreos.com_servicemonitors.yaml",
    "monitoring.coreos.com_podmonitors.yaml",
    "monitoring.coreos.com_prometheusrules.yaml",
)

# the README does not name licences: each repository's LICENSE file at the tag is the Apache License 2.0
LICENCES = {
    "argoproj/argo-cd": "Apache-2.0",
    "argoproj/argo-rollouts": "Apache-2.0",
    "fluxcd/kustomize-controller": "Apache-2.0",
    "fluxcd/source-controller": "Apache-2.0",
    "kubernetes-sigs/gateway-api": "Apache-2.0",
    "external-secrets/external-secrets": "Apache-2.0",
    "kedacore/keda": "Apache-2.0",
    "prometheus-operator/prometheus-operator": "Apache-2.0",
}

PROSE = frozenset({"description", "example", "title", "externalDocs"})
# keywords whose value is a schema, a list of schemas, or a map of name -> schema
SCHEMA = frozenset({"items", "not", "additionalProperties"})
SCHEMAS = frozenset({"allOf", "anyOf", "oneOf"})
NAMED = frozenset({"properties", "patternProperties", "definitions", "$defs"})


@dataclass(frozen=True)
class Source:
    file: str
    repository: str
    tag: str
    commit: str
    path: str
    blob: str
    sha256: str


def read_sources(readme: Path) -> dict[str, Source]:
    """The README's table: file | repository | tag | commit | path in repo | git blob | sha256."""
    out = {}
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].endswith(".yaml") and re.fullmatch(r"[0-9a-f]{64}", cells[6]):
            out[cells[0]] = Source(*cells)
    return out


def strip_prose(schema: Any) -> Any:
    """The schema without prose; names under `properties` are field names and always kept."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in PROSE:
            continue
        if key in SCHEMA:
            out[key] = strip_prose(value)
        elif key in SCHEMAS:
            out[key] = [strip_prose(v) for v in value]
        elif key in NAMED:
            out[key] = {name: strip_prose(v) for name, v in value.items()}
        elif key == "x-kubernetes-validations":
            # rule, message, messageExpression, reason, fieldPath, optionalOldSelf: all structure
            out[key] = [dict(rule) for rule in value]
        else:
            out[key] = value
    return out


def derive(doc: dict[str, Any]) -> dict[str, Any]:
    """A CustomResourceDefinition reduced to its served versions' structural schemas."""
    spec = doc["spec"]
    versions = [
        {"name": v["name"], "served": True, "storage": bool(v.get("storage")),
         "schema": {"openAPIV3Schema": strip_prose(v["schema"]["openAPIV3Schema"])}}
        for v in spec["versions"] if v.get("served")
    ]
    return {
        "apiVersion": doc["apiVersion"],
        "kind": "CustomResourceDefinition",
        "metadata": {"name": doc["metadata"]["name"]},
        "spec": {"group": spec["group"], "names": {"kind": spec["names"]["kind"], "plural": spec["names"]["plural"]},
                 "scope": spec["scope"], "versions": versions},
    }


def dump(data: Any) -> bytes:
    return (json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def generate(reference: Path) -> dict[str, bytes]:
    """File name -> bytes of every derived schema and of index.json."""
    if not (reference / "README.md").is_file():
        raise SystemExit(f"{reference}: no reference CRDs with their README here; pass --reference DIR")
    sources = read_sources(reference / "README.md")
    files: dict[str, bytes] = {}
    index = []
    for name in FILES:
        source = sources.get(name)
        if source is None:
            raise SystemExit(f"{reference / 'README.md'}: no row for {name}")
        raw = (reference / name).read_bytes()
        if hashlib.sha256(raw).hexdigest() != source.sha256:
            raise SystemExit(f"{reference / name}: sha256 differs from the README's; not the recorded upstream file")
        doc = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        derived = derive(doc)
        out_name = name.removesuffix(".yaml") + ".json"
        files[out_name] = dump(derived)
        spec = derived["spec"]
        index.append({
            "file": out_name,
            "group": spec["group"],
            "kind": spec["names"]["kind"],
            "versions": [v["name"] for v in spec["versions"]],
            "source": {"repository": source.repository, "tag": source.tag, "commit": source.commit,
                       "path": source.path, "blob": source.blob, "sha256": source.sha256},
            "licence": LICENCES[source.repository],
        })
    files["index.json"] = (json.dumps({
        "about": "Structural schemas of CustomResourceDefinitions, derived by scripts/derive_crd_schemas.py from the "
                 "upstream files named here: descriptions and examples removed, everything that validates kept. "
                 "Each upstream project's licence applies to its file.",
        "crds": index,
    }, indent=1, sort_keys=True) + "\n").encode()
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when --out differs")
    args = parser.parse_args()
    files = generate(args.reference)
    stale = sorted(n for n, data in files.items() if not (args.out / n).is_file() or (args.out / n).read_bytes() != data)
    extra = sorted(p.name for p in args.out.glob("*.json") if p.name not in files) if args.out.is_dir() else []
    if args.check:
        for name in stale:
            print(f"{args.out / name}: differs from what the script derives", file=sys.stderr)
        for name in extra:
            print(f"{args.out / name}: not derived by the script", file=sys.stderr)
        return 1 if stale or extra else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (args.out / name).write_bytes(files[name])
    for name in extra:
        (args.out / name).unlink()
    total = sum(len(d) for d in files.values())
    print(f"{len(files)} files, {total / 1024:.0f} KiB in {args.out} ({len(stale)} written, {len(extra)} removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
