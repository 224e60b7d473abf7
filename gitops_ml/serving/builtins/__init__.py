"""Built-in scorers: models served with no score.py, chosen by the manifest's `scoring.builtin`.

Each module (sklearn, xgboost, lightgbm, onnx, mlflow) holds a Scorer with the score.py contract,
init() and run(data), over the artifact; `load_builtin` picks it. catalog.py describes them as data
and imports nothing heavy. A score.py may wrap one (see load_builtin).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from gitops_ml.errors import LoadError
from gitops_ml.serving.builtins.catalog import BUILTINS

if TYPE_CHECKING:
    from gitops_ml.serving.builtins._common import BuiltinScorer

__all__ = ["load_builtin"]


def load_builtin(name: str, model_dir: Path | str, artifact: str, *, options: str = "", input_names: Sequence[str] = (),
                 batch: bool = False) -> "BuiltinScorer":
    """The built-in scorer `name` over `artifact` (a file name in model_dir); call init() before run().

    From a score.py that adds pre- or post-processing to a built-in:

        from gitops_ml.serving.builtins import load_builtin
        scorer = load_builtin("sklearn", Path(__file__).parent, "model.joblib", options='{"probabilities": true}')
        def init(): scorer.init()
        def run(data): answer = scorer.run(data); ...; return answer
    """
    if name not in BUILTINS:
        raise LoadError(f"unknown built-in scorer {name!r}; the built-ins are {', '.join(BUILTINS)}")
    if not artifact:
        raise LoadError(f"built-in {name} needs the artifact's file name (model.yaml's artifact.path)")
    # numpy, pandas and the model's library load here, not when validate or build read the catalog
    from gitops_ml.serving.builtins._common import Options  # noqa: PLC0415

    module = importlib.import_module(f"gitops_ml.serving.builtins.{name}")
    scorer: BuiltinScorer = module.Scorer(Path(model_dir) / artifact, Options.parse(options, input_names, batch))
    return scorer
