"""Edits of the registry as pull requests: `bump`, `promote` and `rollback` planned against the
working tree and git history, written keeping comments and formatting, the render root re-rendered,
then committed, pushed and proposed with a body that shows the change (`prbody`).

The only package that writes the repository's own files; never prints.
"""
