"""Git history as registry events: the tag grammar (`tags`), reading commits and tags through
adapters.git (`reading`), and the pure fold of those events into versions and runs (`fold`).

Reads git only; never validates a tree, never renders, never prints.
"""

from gitops_ml.history.fold import CommitInfo, ModelHistory, Run, VersionRecord, fold_history
from gitops_ml.history.tags import VersionTag, format_tag, parse_tag

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
