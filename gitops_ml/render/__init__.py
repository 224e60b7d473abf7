"""The `render` stage: validated specs + resolved versions -> plan (`planning`, pure) -> files
(`files`, `objects`, `engines`, `emit`; deterministic) -> the render root on disk (`writing`:
atomic, owned files only); the use case with `--check` (`service`), `--verify` (`verify`) and the
rendered-manifest diff against a base (`diff`).

Never builds images, never edits the repository's own files, never prints.
"""
