"""Models brought in from other registries as gitops-ml models: `import mlflow` writes a model
directory with a built-in scorer (no score.py), or registers a newer version of one as a bump.
Writes the repository's files through the same atomic, undoable paths as the edits; never prints.
"""
