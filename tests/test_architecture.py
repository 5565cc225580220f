"""The layers point one way: front-ends → gateway → marc.

- `marc/` imports nothing of ours (no gateway, no front-end);
- `gateway/` imports no front-end, except the composition root that wires the listeners;
- a front-end never imports another front-end.

Every import counts: at the top of a module, inside a function (where a cycle likes to hide),
under `TYPE_CHECKING`, and `importlib.import_module("...")` / `__import__("...")` with a
literal name. The checker reads source with `ast` and imports nothing, so it also runs on the
planted trees below that prove it can fail.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

MARC = "marc"
CORE = "gateway"
# Today's front-ends and the ones the architecture reserves a place for (ISO 18626 ILL, the
# readers' web portal, union search): the rule binds them from their first line.
FRONT_ENDS = ("sip2", "sru", "z3950", "ill", "web", "union")
OURS = (MARC, CORE, *FRONT_ENDS)
# The one core module allowed to import front-ends: it builds the service tree of listeners.
# The core modules allowed to import front-ends: app.py builds the service tree of listeners,
# cli/front_ends.py adds the front-ends' own commands (union search) to `libgate`.
COMPOSITION_ROOTS = ("gateway/app.py", "gateway/cli/front_ends.py")


@dataclass(frozen=True, order=True)
class Violation:
    path: str  # relative to the tree checked, with forward slashes
    line: int
    rule: str
    imported: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.imported}: breaks '{self.rule}'"


MARC_RULE = "marc imports nothing of ours (no gateway, no front-end)"
CORE_RULE = (
    f"gateway imports no front-end (only {' and '.join(COMPOSITION_ROOTS)}, the composition root)"
)
FRONT_END_RULE = "a front-end never imports another front-end"


def imported_modules(tree: ast.Module, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a module, wherever it sits."""
    package = module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, from_module(node, package)))
        elif isinstance(node, ast.Call) and node.args:
            function = node.func
            called = (
                function.attr
                if isinstance(function, ast.Attribute)
                else function.id
                if isinstance(function, ast.Name)
                else ""
            )
            first = node.args[0]
            if (
                called in ("import_module", "__import__")
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and not first.value.startswith(".")
            ):
                found.append((node.lineno, first.value))
    return found


def from_module(node: ast.ImportFrom, package: list[str]) -> str:
    """The absolute module a `from … import` reads; relative ones resolve against `package`."""
    if not node.level:
        return node.module or ""
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def broken_rule(path: str, importer: str, imported: str) -> str | None:
    """The rule an import from package `importer` (file `path`) of `imported` breaks, if any."""
    if imported not in OURS or imported == importer:
        return None
    if importer == MARC:
        return MARC_RULE
    if importer == CORE and imported in FRONT_ENDS:
        return None if path in COMPOSITION_ROOTS else CORE_RULE
    if importer in FRONT_ENDS and imported in FRONT_ENDS:
        return FRONT_END_RULE
    return None


def find_violations(root: Path) -> list[Violation]:
    """Every import in the packages under `root` that points the wrong way."""
    violations: list[Violation] = []
    for package in OURS:
        for file in sorted((root / package).rglob("*.py")):
            relative = file.relative_to(root)
            path = relative.as_posix()
            # A package's __init__ keeps its name, so that its package is the parent.
            module = ".".join(relative.with_suffix("").parts)
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=path)
            for line, name in imported_modules(tree, module):
                rule = broken_rule(path, package, name.split(".")[0])
                if rule is not None:
                    violations.append(Violation(path, line, rule, name))
    return sorted(violations)


def module_graph(root: Path) -> dict[str, set[str]]:
    """Which of our modules each of our modules imports (`from p import m` counts as p.m)."""
    files: dict[str, Path] = {}
    for package in OURS:
        for file in (root / package).rglob("*.py"):
            name = ".".join(file.relative_to(root).with_suffix("").parts)
            files[name.removesuffix(".__init__")] = file
    graph: dict[str, set[str]] = {}
    for name, file in files.items():
        module = ".".join(file.relative_to(root).with_suffix("").parts)
        tree = ast.parse(file.read_text(encoding="utf-8"))
        targets = {imported for _, imported in imported_modules(tree, module)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):  # the names may be modules: `from p import m`
                source = from_module(node, module.split(".")[:-1])
                targets |= {f"{source}.{alias.name}" for alias in node.names}
        deps: set[str] = set()
        for target in targets:
            parts = target.split(".")
            while parts and ".".join(parts) not in files:
                parts.pop()
            if parts and ".".join(parts) != name:
                deps.add(".".join(parts))
        graph[name] = deps
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Groups of modules that import each other, directly or round a loop (Tarjan)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[frozenset[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in order:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], order[target])
        if low[module] == order[module]:
            group: set[str] = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(frozenset(group))

    for module in sorted(graph):
        if module not in order:
            visit(module)
    return cycles


def test_the_layers_point_one_way() -> None:
    violations = find_violations(REPO)
    assert not violations, "imports that point the wrong way:\n" + "\n".join(map(str, violations))


def test_no_import_cycles_even_through_function_local_imports() -> None:
    cycles = import_cycles(module_graph(REPO))
    assert not cycles, "modules that import each other:\n" + "\n".join(
        " <-> ".join(sorted(cycle)) for cycle in cycles
    )


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    files = {
        "gateway/__init__.py": "",
        "gateway/app.py": "def serve():\n    from gateway.cli import open_migrated_store\n",
        "gateway/cli/__init__.py": "from gateway.cli import staff\n",
        "gateway/cli/staff.py": "def run():\n    from gateway import app\n",
        "gateway/store.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    graph = module_graph(tmp_path)
    assert graph["gateway.cli.staff"] == {"gateway", "gateway.app"}
    assert import_cycles(graph) == [frozenset({"gateway.app", "gateway.cli", "gateway.cli.staff"})]


def test_the_checker_sees_every_kind_of_import_and_every_rule(tmp_path: Path) -> None:
    files = {
        "marc/__init__.py": "",
        "marc/clean.py": "import re\nfrom marc.record import Field\nfrom . import errors\n",
        "marc/top.py": "from gateway.catalogue.model import BibRecord\n",
        "marc/hidden.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from gateway.config import HoldingsProfile\n"
            "def later():\n"
            "    import sip2.spec\n"
        ),
        "gateway/__init__.py": "",
        "gateway/app.py": "def wire():\n    from sip2.server import build\n",
        "gateway/cli/__init__.py": "from .. import app\nfrom gateway.cli import staff\n",
        "gateway/cli/staff.py": "def run():\n    from sru.resource import sru_services\n",
        "gateway/catalogue.py": "import importlib\nX = importlib.import_module('z3950.records')\n",
        "sip2/handlers.py": "import marc.record\nfrom gateway.circulation import engine\n",
        "sru/resource.py": "def f():\n    return __import__('z3950')\n",
        "z3950/server.py": "from sru.diagnostics import SRUDiagnostic\nfrom . import session\n",
        "web/views.py": "from ill import requests\n",
        "tests/test_anything.py": "import sip2, sru, z3950, gateway, marc\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    found = {(v.path, v.line, v.imported, v.rule) for v in find_violations(tmp_path)}
    assert found == {
        ("marc/top.py", 1, "gateway.catalogue.model", MARC_RULE),
        ("marc/hidden.py", 3, "gateway.config", MARC_RULE),
        ("marc/hidden.py", 5, "sip2.spec", MARC_RULE),
        ("gateway/cli/staff.py", 2, "sru.resource", CORE_RULE),
        ("gateway/catalogue.py", 2, "z3950.records", CORE_RULE),
        ("sru/resource.py", 2, "z3950", FRONT_END_RULE),
        ("z3950/server.py", 1, "sru.diagnostics", FRONT_END_RULE),
        ("web/views.py", 1, "ill", FRONT_END_RULE),
    }
    message = str(next(v for v in find_violations(tmp_path) if v.path == "marc/top.py"))
    assert message == (
        "marc/top.py:1: imports gateway.catalogue.model: breaks"
        " 'marc imports nothing of ours (no gateway, no front-end)'"
    )


def test_relative_imports_resolve_against_their_package() -> None:
    tree = ast.parse("from . import a\nfrom .b import c\nfrom .. import d\nfrom ..e import f\n")
    names = [name for _, name in imported_modules(tree, "gateway.cli.staff")]
    assert names == ["gateway.cli", "gateway.cli.b", "gateway", "gateway.e"]
    package_tree = ast.parse("from . import a\n")
    assert imported_modules(package_tree, "gateway.cli.__init__") == [(1, "gateway.cli")]


# A rule id (R1-R15 of reservation-rules.md, I1-I7 of catalogue-and-ill.md) names a decision,
# and every decision lives in the engine: a front-end or another core module that cites one is
# deciding it again, or is about to.
RULE_ID = re.compile(r"\b(?:R(?:1[0-5]|[1-9])|I[1-7])\b")
RULES_HOME = "gateway/circulation/"


def rule_citations(root: Path) -> list[str]:
    found = []
    for package in OURS:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if relative.startswith(RULES_HOME):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if RULE_ID.search(line):
                    found.append(f"{relative}:{number}: {line.strip()}")
    return found


def test_circulation_rules_are_cited_only_in_the_engine() -> None:
    assert rule_citations(REPO) == []


def test_the_rule_citation_check_can_fail(tmp_path: Path) -> None:
    (tmp_path / "sip2").mkdir()
    (tmp_path / "sip2" / "handlers.py").write_text("# R7: refuse at a kiosk\nRANGE = 'R16'\n")
    (tmp_path / "gateway" / "circulation").mkdir(parents=True)
    (tmp_path / "gateway" / "circulation" / "loans.py").write_text("# R7\n")
    assert rule_citations(tmp_path) == ["sip2/handlers.py:1: # R7: refuse at a kiosk"]


# --- the engine's tables are the engine's ---------------------------------------------------

STORAGE = "gateway.circulation.storage"
STORAGE_HOME = "gateway/circulation/"


def storage_calls_outside_the_engine(root: Path) -> list[str]:
    """Every use of the engine's SQL functions outside the engine: the staff CLI and the
    front-ends ask the engine (its data types, capitalised, may be named)."""
    found = []
    for package in OURS:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if relative.startswith(STORAGE_HOME):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names if alias.name == STORAGE]
                elif isinstance(node, ast.ImportFrom) and node.module == "gateway.circulation":
                    names = [alias.name for alias in node.names if alias.name == "storage"]
                elif isinstance(node, ast.ImportFrom) and node.module == STORAGE:
                    names = [alias.name for alias in node.names if not alias.name[:1].isupper()]
                else:
                    continue
                found += [f"{relative}:{node.lineno}: {name}" for name in names]
    return found


def test_only_the_engine_uses_its_storage_functions() -> None:
    assert storage_calls_outside_the_engine(REPO) == []


def test_the_storage_check_can_fail(tmp_path: Path) -> None:
    (tmp_path / "gateway" / "cli").mkdir(parents=True)
    (tmp_path / "gateway" / "cli" / "staff.py").write_text(
        "from gateway.circulation import storage\n"
        "from gateway.circulation.storage import Patron, copy_by_barcode\n"
        "def f():\n    import gateway.circulation.storage\n"
    )
    (tmp_path / "gateway" / "circulation").mkdir()
    (tmp_path / "gateway" / "circulation" / "loans.py").write_text(
        "from gateway.circulation import storage\n"
    )
    assert storage_calls_outside_the_engine(tmp_path) == [
        "gateway/cli/staff.py:1: storage",
        "gateway/cli/staff.py:2: copy_by_barcode",
        "gateway/cli/staff.py:4: gateway.circulation.storage",
    ]


# SQL lives in the storage modules; a front-end asks the core. Two signs that a front-end runs
# SQL itself: it calls a transaction's query methods, or it holds a string that reads as a SQL
# statement (f-strings included, their placeholders read as a value). Keywords are matched in
# capitals, as every statement in libgate is written: prose ("select the record from the
# list") must not count.
QUERY_METHODS = ("execute", "executemany", "scalar", "one")
SQL_STATEMENT = re.compile(
    r"\bSELECT\s.+?\sFROM\s|\bINSERT\s+INTO\s|\bUPDATE\s+\w+\s+SET\s|\bDELETE\s+FROM\s",
    re.DOTALL,
)


def _text_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) and isinstance(part.value, str) else "x"
            for part in node.values
        )
    return None


def sql_in_front_ends(root: Path) -> list[str]:
    """Every place a front-end runs a query or spells out a SQL statement."""
    found = []
    for package in FRONT_ENDS:
        for file in sorted((root / package).rglob("*.py")):
            path = file.relative_to(root).as_posix()
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=path)
            inside_fstrings = {
                id(part)
                for node in ast.walk(tree)
                if isinstance(node, ast.JoinedStr)
                for part in node.values
            }
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    method = node.func.attr
                    sql_first = bool(node.args) and _text_of(node.args[0]) is not None
                    # `insert` only with a statement: `list.insert(0, x)` is no query.
                    if method in QUERY_METHODS or (method == "insert" and sql_first):
                        found.append(f"{path}:{node.lineno}: calls .{method}()")
                text = None if id(node) in inside_fstrings else _text_of(node)
                if isinstance(node, ast.expr) and text and SQL_STATEMENT.search(text):
                    found.append(f"{path}:{node.lineno}: SQL {text.strip()[:40]!r}")
    return sorted(found, key=lambda place: (place.split(":")[0], int(place.split(":")[1])))


def test_front_ends_never_run_sql() -> None:
    assert sql_in_front_ends(REPO) == []


def test_the_sql_check_can_fail(tmp_path: Path) -> None:
    files = {
        "sip2/handlers.py": (
            "def patron(tx, barcode):\n"
            "    return tx.scalar(QUERY, (barcode,))\n"
            "QUERY = 'SELECT name\\n  FROM patrons WHERE barcode = ?'\n"
        ),
        "sru/explain.py": (
            "def bump(store, n):\n"
            "    with store.write() as tx:\n"
            "        tx.insert('INSERT INTO log (n) VALUES (?)', (n,))\n"
            "        tx.execute(f'UPDATE counters SET n = {n}')\n"
        ),
        "z3950/records.py": (
            "lines = []\n"
            "lines.insert(0, 'header')\n"
            "NOTE = 'Select the record you want from the list; we delete from memory.'\n"
            "GONE = f'DELETE FROM {TABLE} WHERE id = 1'\n"
        ),
        "gateway/catalogue/repository.py": "def f(tx):\n    return tx.one('SELECT 1 FROM t')\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert sql_in_front_ends(tmp_path) == [
        "sip2/handlers.py:2: calls .scalar()",
        "sip2/handlers.py:3: SQL 'SELECT name\\n  FROM patrons WHERE barcode'",
        "sru/explain.py:3: calls .insert()",
        "sru/explain.py:3: SQL 'INSERT INTO log (n) VALUES (?)'",
        "sru/explain.py:4: calls .execute()",
        "sru/explain.py:4: SQL 'UPDATE counters SET n = x'",
        "z3950/records.py:4: SQL 'DELETE FROM x WHERE id = 1'",
    ]
