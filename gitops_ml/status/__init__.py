"""What runs where: git's endpoints against the cluster's objects (the second phase's `status`).

`desired` is git's side (the one module that touches render's plan), `observed` parses the API's
JSON, `compare` is the pure comparison, `service` reads the cluster (list, then watch) through
adapters.cluster, and `rbac` is the read-only role those reads need. Nothing here prints.
"""

from gitops_ml.status.model import EndpointStatus, Mark, StatusReport, Verdict

__all__ = ["EndpointStatus", "Mark", "StatusReport", "Verdict"]
