"""`gitops-ml init`: the files of a new repository that validates, renders and serves as is
(`repository`), and the GitHub Actions workflows it and `workflows` write (`workflows`).

Produces file contents; the caller writes them. Never prints.
"""
