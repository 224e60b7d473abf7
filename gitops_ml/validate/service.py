"""The `validate` use case: schema and cross-file findings of the working tree, pins checked
against git history, and with a base revision the version rules. Returns a Report; never prints.
"""

from __future__ import annotations

from gitops_ml.repo.handle import Repository
from gitops_ml.validate.rollout import candidate_findings, has_candidates
from gitops_ml.validate.rules import older_pins, validate_repository
from gitops_ml.validate.specs import Report
from gitops_ml.validate.versions import version_findings


def check_repository(repository: Repository, base: str | None = None) -> Report:
    """Every finding of the repository, the version rules against `base` included when given."""
    report = validate_repository(repository)
    specs = report.specs
    findings = set(report.findings)
    if specs is not None and older_pins(specs):
        from gitops_ml.validate.pins import missing_pins  # noqa: PLC0415 - GitPython only when a pin names an older version

        findings |= set(missing_pins(repository, specs))
    if specs is not None and has_candidates(specs.deployments):
        findings |= set(candidate_findings(repository, specs))
    if base:
        findings |= set(version_findings(repository.tree(), report, repository.at(base), base))
    return Report(sorted(findings), report.files, specs)
