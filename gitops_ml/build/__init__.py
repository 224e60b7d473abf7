"""The `build` stage: one image per model version. Requirements checked and located, locks resolved
(`lock`), layers written on the host from the lock and the model's files, the image assembled and
loaded, pushed with its SBOM and provenance as referrers, `verify-image`, and `run-image`.

Never renders, never prints (progress goes through a callback); edits the repository only in `lock`, which
writes a model's lock and names it in its manifest.
"""
