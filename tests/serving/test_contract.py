"""score_contract_problems: whether score.py's init() and run(data) can be called as the server calls
them, read with ast (never imported), and the same verdict as the start-up check on the imported
functions."""

from __future__ import annotations

import textwrap
import types

import pytest

from gitops_ml.serving.contract import ContractProblem, init_problem, run_problem, score_contract_problems, signature_of

TWO = ["image", "options"]


def problems(source: str, names: list[str] = TWO, batch: bool = False) -> list[ContractProblem]:
    return score_contract_problems(textwrap.dedent(source), names, batch=batch)


@pytest.mark.parametrize(
    "source",
    [
        "def run(data):\n    return data\n",
        "def run(data, threshold=0.5):\n    return data\n",
        "def run(*args):\n    return args\n",
        "def run(data, *, flag=False):\n    return data\n",
        "def init():\n    pass\n\ndef run(data):\n    return data\n",
        "from helpers import run\n",
        "from helpers import *\n",
        "import functools\n\n@functools.lru_cache\ndef run(a, b):\n    return a\n",
        "run = lambda data: data\n",
        "try:\n    import torch\nexcept ImportError:\n    torch = None\n\ndef run(data):\n    return data\n",
    ],
    ids=[
        "plain",
        "default",
        "varargs",
        "optional-keyword",
        "init",
        "imported",
        "star",
        "decorated",
        "assigned",
        "after-try",
    ],
)
def test_what_the_server_can_call_is_accepted(source: str) -> None:
    assert problems(source) == []


def test_a_run_that_takes_the_inputs_as_arguments_is_located_with_a_hint() -> None:
    (problem,) = problems("import numpy\n\n\ndef run(image, options):\n    return 1\n")
    assert (problem.line, problem.col) == (4, 1)
    assert (
        problem.message
        == "run(image, options) needs 2 arguments, but the server calls run(data) with one: one dict {'image': ..., 'options': ...}"
    )
    assert (
        problem.hint
        == "write `def run(data):` and take the inputs from the dict: image, options = data['image'], data['options']"
    )


@pytest.mark.parametrize(
    ("source", "names", "batch", "message"),
    [
        (
            "def run():\n    pass\n",
            ["data"],
            False,
            "run() takes no argument, but the server calls run(data) with the value of the input 'data'",
        ),
        ("def run(data, *, flag):\n    pass\n", ["data"], False, "run's keyword-only parameter 'flag' has no default"),
        ("async def run(data):\n    pass\n", ["data"], False, "run is defined with `async def`"),
        (
            "def run(a, b):\n    pass\n",
            ["data"],
            True,
            "with one: a list, one item per request, each the value of the input 'data'",
        ),
        (
            "def init(path):\n    pass\n\ndef run(data):\n    pass\n",
            ["data"],
            False,
            "init(path) needs the argument 'path', but the server calls init() with none",
        ),
        ("x = 1\n", ["data"], False, "score.py defines no run(data) function"),
        ("def run(data)\n    pass\n", ["data"], False, "Python syntax error"),
    ],
    ids=["no-argument", "keyword-only", "async", "batch", "init-argument", "no-run", "syntax"],
)
def test_what_the_server_cannot_call_is_said(source: str, names: list[str], batch: bool, message: str) -> None:
    (problem,) = problems(source, names, batch)
    assert message in problem.message
    assert problem.line >= 1


@pytest.mark.parametrize(
    "source",
    [
        # which of two definitions runs depends on the interpreter: not judged statically
        "import sys\nif sys.version_info >= (3, 8):\n    def run(data):\n        pass\nelse:\n    def run(data, extra):\n        pass\n",
        "def run(data):\n    pass\n\nif __name__ == '__main__':\n    def run(a, b):\n        pass\n",
        # bound in ways a reader of the top level does not follow: not "defines no run"
        "while True:\n    def run(data):\n        pass\n    break\n",
        "def impl(data):\n    pass\n\nglobals()['run'] = impl\n",
        "def run(data):\n" + "    x = " + "-" * 200_000 + "1\n",
    ],
    ids=["if-else", "main-block", "while", "globals", "deep"],
)
def test_what_cannot_be_judged_statically_is_not_refused(source: str) -> None:
    found = problems(source, ["data"], False)
    assert all("nests too deeply" in p.message for p in found), found


@pytest.mark.parametrize(
    "source",
    [
        "def run(data):\n    pass\n",
        "def run(image, options):\n    pass\n",
        "def run():\n    pass\n",
        "def run(data, /, *, flag):\n    pass\n",
        "def run(a, b=1, *rest):\n    pass\n",
        "async def run(data):\n    pass\n",
        "def init(model_path):\n    pass\n\ndef run(data):\n    pass\n",
        "async def init():\n    pass\n\ndef run(data):\n    pass\n",
    ],
)
@pytest.mark.parametrize("batch", [False, True])
def test_the_static_and_the_start_up_check_agree(source: str, batch: bool) -> None:
    module = types.ModuleType("score")
    exec(compile(source, "score.py", "exec"), module.__dict__)  # noqa: S102 - the test's own source
    found = []
    run_sig = signature_of(module.run, "run")
    assert run_sig is not None
    found.append(run_problem(run_sig, TWO, batch=batch))
    if hasattr(module, "init"):
        init_sig = signature_of(module.init, "init")
        assert init_sig is not None
        found.append(init_problem(init_sig))
    at_start_up = [(p.message, p.hint) for p in found if p is not None]
    assert [(p.message, p.hint) for p in problems(source, TWO, batch)] == at_start_up
