"""Git as the model registry: the tag grammar (`tags`), the pure fold (`state`), reading from git
(`reading`) and the use cases (`service`: models, history, show, compare, tag).

Only the pure modules are re-exported here; `service` imports `versions`, which imports `reading`,
so importing it from this package's top would make a cycle.
"""

from gitops_ml.registry.state import CommitInfo, ModelHistory, Run, VersionRecord, fold_history
from gitops_ml.registry.tags import VersionTag, format_tag, parse_tag

__all__ = [
    "CommitInfo",
    "ModelHistory",
    "Run",
    "VersionRecord",
    "VersionTag",
    "fold_history",
    "format_tag",
    "parse_tag",
]
