"""The package's layers: each concern package imports only the layers before it (docs/operations.md, "The code's
layout"), and no module imports one that imports it back.

Every import counts, those inside functions and under TYPE_CHECKING included: an import deferred to keep
start-up light is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tracker"

# In order: a module may import its own layer and those before it, never one after it.
LAYERS = (
    ("shared ground", ("errors", "settings", "logs", "files", "topics", "cron", "text", "memory", "_version")),
    ("ncbi", ("ncbi",)),
    ("facts", ("facts",)),
    ("store", ("store",)),
    ("review", ("review",)),
    ("runs", ("runs",)),
    ("outputs", ("outputs",)),
    ("schedule", ("schedule",)),
    ("views", ("views",)),
    ("web", ("web",)),
    ("cli", ("cli",)),
)
# The package's doors: `import tracker` (papers_frame) and `python -m tracker` reach the layers above on purpose.
DOORS = {"tracker", "tracker.__main__"}
LAYER_OF = {name: index for index, (_, names) in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    """The layer of a tracker module ("tracker.store.papers" -> store's)."""
    top = module.split(".")[1]
    if top not in LAYER_OF:
        raise AssertionError(f"{module} is in no layer: add '{top}' to LAYERS here and to the layout in docs/operations.md")
    return LAYER_OF[top]


def imports_of(path: Path) -> set[str]:
    """The tracker modules `path` imports ("from tracker.store import papers" names tracker.store.papers)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("tracker."))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "tracker":
                found.update(f"tracker.{alias.name}" for alias in node.names if alias.name != "__version__")
            elif node.module.startswith("tracker."):
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names
                             if (PACKAGE.parent / (node.module + "." + alias.name).replace(".", "/")).with_suffix(".py").exists()
                             or (PACKAGE.parent / (node.module + "." + alias.name).replace(".", "/")).is_dir())
    return found


def all_modules() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_import_goes_to_the_same_layer_or_one_before_it():
    broken = []
    for module, imported in all_modules().items():
        if module in DOORS:
            continue
        for target in sorted(imported):
            if layer(target) > layer(module):
                broken.append(f"{module} imports {target} ({LAYERS[layer(target)][0]} comes after "
                              f"{LAYERS[layer(module)][0]})")
    assert broken == []


def test_no_import_cycle_between_modules():
    modules = all_modules()
    graph = {module: {target for target in imported if target in modules and target != module}
             for module, imported in modules.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            # A package's __init__ that re-exports its modules is one node with them, not a cycle.
            if target.startswith(module + ".") or module.startswith(target + "."):
                continue
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state and module not in DOORS:
            visit(module)
    assert cycles == []


# The rules' SQL expressions sit beside their Python twins (tracker/review/states.py); every statement is the store's.
SQL_OUTSIDE_THE_STORE = {"tracker.review.states"}


def test_no_sql_outside_the_store():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        if module.startswith("tracker.store") or module in SQL_OUTSIDE_THE_STORE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{module} imports {name}" for name in names if name.split(".")[0] in ("sqlalchemy", "sqlmodel")]
    assert found == []


def test_the_command_line_starts_without_the_database_layer():
    # Every command, `tracker --version` included, imports tracker.cli; the store's imports (SQLAlchemy, SQLModel,
    # the models) took 0.33 s of a 0.55 s start-up when one module-level import of a type reached them.
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, tracker.cli; print(sorted(name for name in sys.modules if name.split('.')[0] "
         "in ('sqlalchemy', 'sqlmodel', 'pandas', 'sklearn', 'httpx', 'jinja2', 'starlette')))"],
        capture_output=True, text=True, check=True, cwd=PACKAGE.parent).stdout.strip()
    assert loaded == "[]"
