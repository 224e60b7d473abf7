"""The score.py contract as rules on signatures: the server calls `init()` with no argument, once, and
`run(data)` with one (a bare value for one named input, a dict {name: value} for several, a list of
those with batching). One rule, two readers: `signature_of` for the imported functions at start-up,
and `score_contract_problems` for `validate`, which reads score.py with `ast` and never imports it.
Pure: no file access, no server state.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence

_TRY_NODES = tuple(getattr(ast, name) for name in ("Try", "TryStar") if hasattr(ast, name))  # TryStar: Python 3.11+


@dataclass(frozen=True)
class Signature:
    """What a function's parameters accept, reduced to what the call rules need."""

    name: str
    positional: tuple[str, ...]  # parameters that can take a positional argument, in order
    required_positional: int  # of those, the ones without a default
    varargs: bool
    required_keyword_only: tuple[str, ...]
    is_coroutine: bool = False


@dataclass(frozen=True)
class ContractProblem:
    """Why score.py cannot be called as the server calls it; line and col are 1-based (0: unknown)."""

    message: str
    hint: str = ""
    line: int = 0
    col: int = 0


def signature_of(function: Callable[..., Any], name: str) -> Signature | None:
    """The Signature of an imported function; None when Python cannot tell (some builtins)."""
    try:
        sig = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return Signature(
        name=name,
        positional=tuple(p.name for p in positional),
        required_positional=sum(1 for p in positional if p.default is p.empty),
        varargs=any(p.kind is p.VAR_POSITIONAL for p in params),
        required_keyword_only=tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty),
        is_coroutine=inspect.iscoroutinefunction(function),
    )


def _ast_signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> Signature:
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    return Signature(
        name=node.name,
        positional=tuple(a.arg for a in positional),
        required_positional=len(positional) - len(args.defaults),
        varargs=args.vararg is not None,
        required_keyword_only=tuple(a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is None),
        is_coroutine=isinstance(node, ast.AsyncFunctionDef),
    )


def run_problem(sig: Signature, input_names: Sequence[str], *, batch: bool = False) -> ContractProblem | None:
    """Why `run(data)` cannot be called with the decoded input of a request; None when it can."""
    if sig.is_coroutine:
        return ContractProblem(
            "run is defined with `async def`: the server calls it on a worker thread and needs a plain function",
            hint="write `def run(data):`; to call async code from it, use asyncio.run()",
        )
    what = _what_run_receives(input_names, batch)
    shown = f"run({', '.join(sig.positional)})"
    if not sig.positional and not sig.varargs:
        return ContractProblem(f"{shown} takes no argument, but the server calls run(data) with {what}", hint="write `def run(data):`")
    if sig.required_positional > 1:
        hint = "write `def run(data):`"
        names = set(input_names)
        if not batch and len(names) > 1 and names >= set(sig.positional[: sig.required_positional]):
            picks = ", ".join(f"data[{n!r}]" for n in sig.positional[: sig.required_positional])
            hint = f"write `def run(data):` and take the inputs from the dict: {', '.join(sig.positional[: sig.required_positional])} = {picks}"
        return ContractProblem(f"{shown} needs {sig.required_positional} arguments, but the server calls run(data) with one: {what}", hint=hint)
    if sig.required_keyword_only:
        return ContractProblem(
            f"run's keyword-only parameter {sig.required_keyword_only[0]!r} has no default, but the server calls run(data) with {what} only",
            hint=f"give {sig.required_keyword_only[0]!r} a default, or take it from data",
        )
    return None


def init_problem(sig: Signature) -> ContractProblem | None:
    """Why `init()` cannot be called with no argument; None when it can."""
    if sig.is_coroutine:
        return ContractProblem("init is defined with `async def`: the server calls it once, as a plain function", hint="write `def init():`")
    needed = [*sig.positional[: sig.required_positional], *sig.required_keyword_only]
    if needed:
        return ContractProblem(
            f"init({', '.join(sig.positional)}) needs the argument {needed[0]!r}, but the server calls init() with none",
            hint="write `def init():` and read what it needs from files next to score.py",
        )
    return None


def _what_run_receives(input_names: Sequence[str], batch: bool) -> str:
    if len(input_names) == 1:
        one = f"the value of the input {input_names[0]!r}"
    elif input_names:
        one = "one dict {" + ", ".join(f"{n!r}: ..." for n in input_names) + "}"
    else:
        one = "the request's JSON body"
    return f"a list, one item per request, each {one}" if batch else one


def score_contract_problems(source: str, input_names: Sequence[str], *, batch: bool = False) -> list[ContractProblem]:
    """What keeps the server from calling score.py's init() and run(data), read without importing it.

    `input_names` are the schema's input (property) names, in order; `batch` is the manifest's
    scoring.batch.enabled. Only what can be known statically is reported: a run or init that is
    decorated, or bound by an assignment or an import, is not judged; a module with no binding of
    `run` at all (and no star import) is.
    """
    try:
        module = ast.parse(source)
    except SyntaxError as exc:
        return [ContractProblem(f"Python syntax error: {exc.msg}", line=exc.lineno or 0, col=exc.offset or 0)]
    except (MemoryError, RecursionError):
        return [ContractProblem("score.py nests too deeply to be read", line=1, col=1)]
    defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef | None] = {}
    star = False
    direct = {id(node) for node in module.body}
    for node in _top_level(module.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in ("run", "init"):
            # one under an `if`, `try` or `with` may be the one that runs or not: not judged
            defs[node.name] = None if node.decorator_list or id(node) not in direct else node
        elif isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            star = True
        else:
            for name in _bound_names(node):
                if name in ("run", "init"):
                    defs[name] = None  # bound some other way: not judged
    problems: list[ContractProblem] = []
    if "run" not in defs:
        if not star and not _mentions_run(module):
            problems.append(ContractProblem("score.py defines no run(data) function", hint="add `def run(data):` returning the prediction", line=1, col=1))
    elif (run := defs["run"]) is not None and (problem := run_problem(_ast_signature(run), input_names, batch=batch)):
        problems.append(_at(problem, run))
    if (init := defs.get("init")) is not None and (problem := init_problem(_ast_signature(init))):
        problems.append(_at(problem, init))
    return problems


def _mentions_run(module: ast.Module) -> bool:
    """Whether anything anywhere may bind `run` (a def in a loop or a match, `globals()["run"] = ...`)."""
    for node in ast.walk(module):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "run":
            return True
        if isinstance(node, ast.Name) and node.id == "run" and isinstance(node.ctx, ast.Store):
            return True
        if isinstance(node, ast.Constant) and node.value == "run":
            return True
        if isinstance(node, ast.alias) and (node.asname or node.name).split(".")[0] == "run":
            return True
    return False


def _at(problem: ContractProblem, node: ast.AST) -> ContractProblem:
    return ContractProblem(problem.message, problem.hint, getattr(node, "lineno", 0), getattr(node, "col_offset", -1) + 1)


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements that run at import, in order, with if/try/with bodies flattened (a def inside `try` counts)."""
    out: list[ast.stmt] = []
    for node in body:
        out.append(node)
        if isinstance(node, ast.If):
            out += _top_level(node.body) + _top_level(node.orelse)
        elif isinstance(node, _TRY_NODES):
            tried: Any = node
            handlers = [s for h in tried.handlers for s in h.body]
            out += _top_level(tried.body) + _top_level(handlers) + _top_level(tried.orelse) + _top_level(tried.finalbody)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            out += _top_level(node.body)
    return out


def _bound_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return [node.name]
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    elif isinstance(node, (ast.For, ast.AsyncFor)):
        targets = [node.target]
    names = []
    for target in targets:
        names += [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
    return names
