"""Documents -> findings, every one located to file:line:col: JSON Schema (`schema`), cross-file
rules and the typed specs built from a clean tree (`rules`), input-schema compatibility
(`compat`), version rules against a base revision (`versions`), and pins checked against
git history (`pins`).

Never renders, never writes, never prints.
"""
