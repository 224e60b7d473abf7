"""The `build` stage: one image per model version. Requirements checked and located, a wheelhouse
resolved on the host, the runtime wheel, the Dockerfile and build context, the image built and
pushed through adapters.docker, and `run-image`.

Never renders, never edits the repository, never prints (progress goes through a callback).
"""
