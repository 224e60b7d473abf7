"""The repository: the handle a verb opens once (`handle.Repository`), the files of the working
tree or of a commit behind one interface (`sources`), YAML/JSON documents that remember where each
value came from (`loading`), the shipped JSON Schemas (`catalog`), and atomic, format-keeping writes
(`atomic`, `editing`).

Reads and parses; never validates cross-file rules, never renders, never prints.
"""
