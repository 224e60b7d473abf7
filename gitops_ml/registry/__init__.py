"""Git as the model registry, the read side users see: `model@version` resolved to the files and
image of that version (`versions`, `imageref`), and the models, history, show, compare and tag
use cases (`service`), each returning a result object.

Built on history/ (events from git) and validate/ (a version's files must validate); never
renders, never edits a file, never prints.
"""
