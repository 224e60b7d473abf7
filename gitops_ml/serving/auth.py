"""API keys: `primary` and `secondary` files in the keys directory (a mounted Secret), reloaded when
their content changes (read again every second: a rewrite in place that keeps the inode, size and
mtime is still seen), compared in constant time. Keys never appear in logs, errors or metrics.
"""

from __future__ import annotations

import hmac
import time
from pathlib import Path
from typing import Iterable

KEY_FILES = ("primary", "secondary")
RELOAD_SECONDS = 1.0


class KeyStore:
    """The keys a request may present. `extra` keys (e.g. `serve --api-key`) never expire."""

    def __init__(self, keys_dir: str | None, extra: Iterable[str] = (), reload_seconds: float = RELOAD_SECONDS) -> None:
        self.keys_dir = Path(keys_dir) if keys_dir else None
        self.extra = tuple(k.encode() for k in extra if k)
        self.reload_seconds = reload_seconds
        self.keys: tuple[bytes, ...] = self.extra
        self.contents: tuple[bytes | None, ...] = ()
        self.next_check = 0.0
        self.reload()

    def reload(self) -> bool:
        """Re-read the key files; True when their content changed.

        Content, not file metadata: a key file is tens of bytes, and a rewrite in place of the same
        length with its mtime put back changes nothing that stat() shows. Kubernetes swaps Secret
        volumes through a symlink (..data); reading follows it.
        """
        self.next_check = time.monotonic() + self.reload_seconds
        if self.keys_dir is None:
            return False
        contents = tuple(_read(self.keys_dir / name) for name in KEY_FILES)
        if contents == self.contents:
            return False
        self.contents = contents
        keys = list(self.extra)
        for content in contents:
            value = content.strip() if content else b""
            if value:
                keys.append(value)
        self.keys = tuple(keys)
        return True

    @property
    def empty(self) -> bool:
        return not self.keys

    def check(self, presented: bytes | None) -> bool:
        """True when `presented` equals one of the keys; every key is compared, in constant time."""
        if time.monotonic() >= self.next_check:
            self.reload()
        if not presented:
            return False
        ok = False
        for key in self.keys:
            ok |= hmac.compare_digest(presented, key)
        return ok


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
