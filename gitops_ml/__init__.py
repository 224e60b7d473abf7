"""gitops-ml: model management for teams that run Kubernetes with GitOps.

The package is layered so that data flows one way (see README, "Layout"):
loading -> validation -> planning -> rendering -> writing, with building, registry
and serving beside them. Importing it has no side effects.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
