"""Insight from captures: reference profiles of a version's training data (`profile`), and drift and
request quality of production against them (`records`, `drift`, `report`), with reports as data,
markdown and HTML (`formats`, `html`). The use cases are in `service`. Nothing here prints.
"""
