"""gitops-ml: model management for teams that run Kubernetes with GitOps.

Data flows one way, down these layers (README, "Layout"; enforced by import-linter in CI):
cli -> edits | build | scaffold -> render -> registry -> validate -> history -> repo
-> adapters | serving -> errors, types. Importing any module has no side effects.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
