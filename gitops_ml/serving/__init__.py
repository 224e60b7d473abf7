"""The scoring server: runs inside the image and locally as `gitops-ml serve`.

A raw ASGI app under uvicorn (httptools, uvloop), numpy and pandas; never click or GitPython. Importing it loads no model.
score.py may raise `InputError` to refuse an input with a 422 naming the field.
"""

from typing import Any

__all__ = ["InputError", "RequestDecoder", "infer_schema", "create_app", "run_server"]


def create_app(*args: object, **kwargs: object) -> object:
    """A ScoringApp (ASGI); see gitops_ml.serving.app.ScoringApp for the arguments."""
    from gitops_ml.serving.app import ScoringApp

    return ScoringApp(*args, **kwargs)  # type: ignore[arg-type]


def run_server(*args: object, **kwargs: object) -> None:
    """Serve a model under uvicorn until signalled; see gitops_ml.serving.server.run_server."""
    from gitops_ml.serving.server import run_server as run

    run(*args, **kwargs)  # type: ignore[arg-type]


def __getattr__(name: str) -> Any:
    # numpy and pandas load only when the server or schema inference is used, so importing
    # gitops_ml.serving.settings (render, build) stays cheap
    if name in {"InputError", "RequestDecoder"}:
        from gitops_ml.serving import decoding

        return getattr(decoding, name)
    if name == "infer_schema":
        from gitops_ml.serving.inference import infer_schema

        return infer_schema
    raise AttributeError(f"module 'gitops_ml.serving' has no attribute {name!r}")
