"""Documents -> findings, every one located to file:line:col: JSON Schema (`schema`), cross-file
rules (`rules`) and the typed specs they build from a clean tree (`specs`), input-schema compatibility
(`compat`), version rules against a base revision (`versions`), and pins checked against
git history (`pins`).

Never renders, never writes, never prints.
"""
