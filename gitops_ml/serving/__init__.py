"""The scoring server: runs inside the image and locally as `gitops-ml serve`.

Uses starlette/uvicorn, numpy and pandas only; never click or GitPython. Importing it loads no model.
"""
