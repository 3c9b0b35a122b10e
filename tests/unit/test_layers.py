"""The layering rules of docs/architecture.md, checked on the source tree (by parsing it)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("broker", "devices", "gateway", "learners", "fleetlearn")
#: The modules that may touch paho: the node and its client factory, and the raw-paho baseline
#: the benchmarks measure the node against.
PAHO_ALLOWED = {"broker/client.py", "broker/client_factory.py", "fleetlearn/bench/raw.py"}
MAX_LINES = 300
#: Production modules over MAX_LINES that other branches are splitting; remove each entry when
#: its split lands (the test below says when).
OVERSIZED_ELSEWHERE: set[str] = set()


def modules(*tops: str) -> Iterator[tuple[str, ast.Module]]:
    """(path relative to the repository, parsed module) of every .py file under ``tops``."""
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), str(path))


def imported(tree: ast.AST, top_level_only: bool = False) -> Iterator[str]:
    """Every module name an ``import`` or ``from ... import`` in ``tree`` names (absolute)."""
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_the_tree_is_where_this_test_looks():
    found = [path for path, _ in modules(*PACKAGES)]
    assert {"broker/client.py", "learners/federation.py", "gateway/service.py"} <= set(found)


#: What each package must not import: broker/ is the bottom; learners/ sits below gateway/ (the
#: gateway builds features and uses the learners); only fleetlearn/ composes everything.
BELOW = {
    "broker": {"devices", "gateway", "learners", "fleetlearn"},
    "learners": {"gateway", "devices", "fleetlearn"},
    "devices": {"gateway", "learners", "fleetlearn"},
    "gateway": {"devices", "fleetlearn"},
}


@pytest.mark.parametrize("package", sorted(BELOW))
def test_a_package_imports_nothing_above_it(package):
    offenders = [(path, name) for path, tree in modules(package)
                 for name in imported(tree) if name.split(".")[0] in BELOW[package]]
    assert offenders == []


def test_only_the_node_and_the_raw_baseline_use_paho():
    offenders = [(path, name) for path, tree in modules(*PACKAGES, "tests")
                 for name in imported(tree)
                 if name.split(".")[0] == "paho" and path not in PAHO_ALLOWED]
    assert offenders == []


def test_only_the_metrics_package_uses_prometheus_client():
    """The exporter is the composition root's (fleetlearn/metrics/): the nodes below publish
    plain snapshots and never import it."""
    offenders = [(path, name) for path, tree in modules(*PACKAGES) for name in imported(tree)
                 if name.split(".")[0] == "prometheus_client"
                 and not path.startswith("fleetlearn/metrics/")]
    assert not offenders, offenders


def test_nothing_outside_the_node_reaches_for_its_paho_client():
    """``node.client`` (or ``._client``) was the paho object: the node offers what tools need."""
    offenders = [(path, node.lineno) for path, tree in modules(*PACKAGES, "tests")
                 if path not in PAHO_ALLOWED for node in ast.walk(tree)
                 if isinstance(node, ast.Attribute) and node.attr in ("client", "_client")]
    assert offenders == []


def test_production_modules_stay_short():
    sizes = {path: len((ROOT / path).read_text().splitlines())
             for path, _ in modules(*PACKAGES)}
    too_long = {p: n for p, n in sizes.items() if n > MAX_LINES and p not in OVERSIZED_ELSEWHERE}
    assert too_long == {}
    split_already = {p for p in OVERSIZED_ELSEWHERE if sizes.get(p, 0) <= MAX_LINES}
    assert split_already == set(), "now short enough: take them off OVERSIZED_ELSEWHERE"


def test_no_import_circle_between_modules():
    """Imports between the project's modules form no cycle, imports inside a function too (a
    late import still ties two modules together: bench_child and bench_raw once did)."""
    names = {path.removesuffix(".py").removesuffix("/__init__").replace("/", "."): tree
             for path, tree in modules(*PACKAGES)}
    graph = {name: sorted({dep for dep in imported(tree)
                           if dep in names and dep != name})
             for name, tree in names.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        stack.append(name)
        for dep in graph[name]:
            if state.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if dep not in state and (cycle := visit(dep)) is not None:
                return cycle
        stack.pop()
        state[name] = 2
        return None

    cycles = [cycle for name in graph if name not in state and (cycle := visit(name))]
    assert cycles == []


def test_every_folder_of_code_is_a_package():
    """setuptools' ``packages.find`` skips a folder without ``__init__.py``: an installed
    fleetlearn would lack it."""
    folders = {path.parent for top in PACKAGES for path in (ROOT / top).rglob("*.py")}
    assert sorted(str(f.relative_to(ROOT)) for f in folders
                  if not (f / "__init__.py").is_file()) == []


def test_the_composition_root_is_small():
    """fleetlearn/ holds its entry points and config; commands, the deployment and the
    benchmarks live in their own sub-packages."""
    files = sorted(p.name for p in (ROOT / "fleetlearn").glob("*.py"))
    assert files == ["__init__.py", "__main__.py", "cli.py", "config.py"]
