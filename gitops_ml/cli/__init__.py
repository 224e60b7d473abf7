"""The command line: one thin module per verb (options -> request -> one core call -> report).

Only this package prints and turns errors into exit codes.
"""
