"""No test input is computed from the clock when its module is imported.

A token, timestamp or deadline made at collection time is already old when a slow suite reaches
the test that uses it: two API tests once failed that way, 13 minutes into a run, with tokens
that had expired. This check reads every module under tests/ and names each call that reads the
clock (directly, through a function of the same module, or by minting a token) in code that runs
at import: module and class bodies, decorators and default arguments. Inside a function or a
lambda the call runs when the test does, which is what it should do.

Its twin at run time is ``--clock-skew-s`` (tests/conftest.py), exercised by
tests/integration/service/test_clock_skew.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

CLOCK_SUFFIXES = (
    "time.time",
    "time.time_ns",
    "time.monotonic",
    "time.perf_counter",
    "datetime.now",
    "datetime.utcnow",
    "date.today",
)
# Helpers of the project that read the clock to make a value that expires.
CLOCK_HELPERS = {"mint_token", "service_token"}

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def _call_name(call: ast.Call) -> str:
    return ast.unparse(call.func)


def _reads_clock_directly(name: str) -> bool:
    return name.endswith(CLOCK_SUFFIXES) or name.rsplit(".", maxsplit=1)[-1] in CLOCK_HELPERS


def _clock_functions(tree: ast.Module) -> set[str]:
    """Names of this module's functions that read the clock, directly or through each other."""
    calls: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, FunctionNode):
            calls[node.name] = {_call_name(c) for c in ast.walk(node) if isinstance(c, ast.Call)}
    readers = {name for name, names in calls.items() if any(map(_reads_clock_directly, names))}
    while True:
        more = {name for name, names in calls.items() if names & readers} - readers
        if not more:
            return readers
        readers |= more


def _import_time_nodes(body: list[ast.stmt]) -> list[ast.AST]:
    """The parts of a module or class body that run when it is imported."""
    found: list[ast.AST] = []
    for stmt in body:
        if isinstance(stmt, FunctionNode):
            found += stmt.decorator_list
            found += [d for d in (*stmt.args.defaults, *stmt.args.kw_defaults) if d is not None]
        elif isinstance(stmt, ast.ClassDef):
            found += [*stmt.decorator_list, *stmt.bases]
            found += _import_time_nodes(stmt.body)
        else:
            found.append(stmt)
    return found


def _calls_outside_functions(node: ast.AST) -> list[ast.Call]:
    if isinstance(node, FunctionNode | ast.Lambda):
        return []
    if isinstance(node, ast.ClassDef):
        return [c for n in _import_time_nodes([node]) for c in _calls_outside_functions(n)]
    found = [node] if isinstance(node, ast.Call) else []
    for child in ast.iter_child_nodes(node):
        found += _calls_outside_functions(child)
    return found


def clock_reads_at_import(source: str) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    local_readers = _clock_functions(tree)
    hits = []
    for node in _import_time_nodes(tree.body):
        for call in _calls_outside_functions(node):
            name = _call_name(call)
            if _reads_clock_directly(name) or name in local_readers:
                hits.append((call.lineno, name))
    return sorted(set(hits))


def test_no_module_under_tests_reads_the_clock_at_import() -> None:
    offenders = [
        f"{path.relative_to(TESTS.parent)}:{line} calls {name}() at import"
        for path in sorted(TESTS.rglob("*.py"))
        for line, name in clock_reads_at_import(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, "compute these when the test runs:\n" + "\n".join(offenders)


def test_the_check_finds_each_kind_of_import_time_clock_read() -> None:
    source = """
import time, datetime, jwt

def _token(**claims):
    return jwt.encode({"exp": int(time.time()) + 600, **claims}, "k")

def _header(**claims):
    return "Bearer " + _token(**claims)

CASES = [("wrong audience", _header(aud="x"))]          # 10: through two local functions
DEADLINE = time.monotonic() + 30                         # 11: directly
STAMP = datetime.datetime.now(datetime.UTC)             # 12: datetime

class Case:
    made = mint_token(settings, "sub", 60)               # 15: a token helper in a class body

def test_default(now=time.time()):                       # 17: a default argument
    pass

@pytest.mark.parametrize("token", [_token()])            # 20: a decorator
def test_decorated(token):
    pass
"""
    assert clock_reads_at_import(source) == [
        (10, "_header"),
        (11, "time.monotonic"),
        (12, "datetime.datetime.now"),
        (15, "mint_token"),
        (17, "time.time"),
        (20, "_token"),
    ]


def test_the_check_lets_clock_reads_run_when_the_test_runs() -> None:
    source = """
import time

def _token():
    return int(time.time()) + 600

CASES = [("expired", lambda: _token())]

def test_case():
    deadline = time.monotonic() + 5
    assert _token() > deadline

class TestThing:
    def test_method(self):
        return time.time()
"""
    assert clock_reads_at_import(source) == []
