"""API keys: `primary` and `secondary` files in the keys directory (a mounted Secret), reloaded when
they change, compared in constant time. Keys never appear in logs, errors or metrics.
"""

from __future__ import annotations

import hmac
import os
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
        self.stamp: tuple[object, ...] = ()
        self.next_check = 0.0
        self.reload()

    def reload(self) -> bool:
        """Re-read the key files when their identity changed; True when the keys changed."""
        self.next_check = time.monotonic() + self.reload_seconds
        if self.keys_dir is None:
            return False
        stamp = tuple(_stat(self.keys_dir / name) for name in KEY_FILES)
        if stamp == self.stamp:
            return False
        self.stamp = stamp
        keys = list(self.extra)
        for name in KEY_FILES:
            try:
                value = (self.keys_dir / name).read_bytes().strip()
            except OSError:
                continue
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


def _stat(path: Path) -> tuple[object, ...]:
    # Kubernetes swaps Secret volumes through a symlink (..data): stat follows it, so the inode and
    # mtime change when the Secret does.
    try:
        st = os.stat(path)
    except OSError:
        return ()
    return (st.st_ino, st.st_mtime_ns, st.st_size)
