"""The tag grammar shared with GTO (pure): `<model>@v<version>` marks the commit that registered a version.

Tags are annotated, with GTO's message, so `gto show` and `gto history` read a gitops-ml repository.
Only registration tags are ours; GTO's stage tags (`<model>#<stage>#<n>`) are left alone because
environments here are directories, not tags.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gitops_ml.types import ModelName, Version

# GTO's artifact names allow '/' and upper case; ours are DNS-1123 labels, a subset of them
_TAG = re.compile(r"^(?P<model>[a-z0-9]([-a-z0-9]*[a-z0-9])?)@v(?P<version>\S+)$")


@dataclass(frozen=True)
class VersionTag:
    """A registration tag: model and version."""

    model: ModelName
    version: Version

    @property
    def name(self) -> str:
        return format_tag(self.model, self.version)

    @property
    def message(self) -> str:
        """The annotation GTO writes, so both tools create identical-looking tags."""
        return f"Registering artifact {self.model} version v{self.version}"


def format_tag(model: str, version: Version) -> str:
    return f"{model}@v{version}"


def parse_tag(name: str) -> VersionTag | None:
    """The VersionTag a tag name encodes, or None for any other tag (releases, GTO stages)."""
    match = _TAG.match(name)
    if not match or not Version.is_valid(match["version"]):
        return None
    return VersionTag(ModelName(match["model"]), Version.parse(match["version"]))


def tag_pattern(model: str) -> str:
    """fnmatch pattern of a model's registration tags (for `git for-each-ref`)."""
    return f"{model}@v*"
