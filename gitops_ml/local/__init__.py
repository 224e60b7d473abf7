"""Running a model on this machine, as `serve` and `predict` do: the model's own environment
(`environment`: a cached virtual environment with its requirements) and the processes started in it
(`runner`). Never prints; the scoring itself is serving/'s, unchanged.
"""
