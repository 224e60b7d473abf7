"""Where the data shipped with gitops-ml lives (schemas, templates): in the wheel under
gitops_ml/_data/, in a source checkout at the top level. A leaf module: any layer may ask it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def data_dir(name: str) -> Path:
    """Directory of shipped data ("schemas" or "templates"), in the wheel or the checkout."""
    packaged = resources.files("gitops_ml") / "_data" / name
    if packaged.is_dir():
        return Path(str(packaged))
    return _SOURCE_ROOT / name
