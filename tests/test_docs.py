"""The documentation is checked against the code, as sqlite-utils does: every command and option `tracker --help`
offers is in the README's commands table, every setting in its configuration table, and every link resolves."""

from __future__ import annotations

import re

import click

from tests.conftest import REPO
from tracker.cli import cli
from tracker.settings import OPTIONS

README = (REPO / "README.md").read_text(encoding="utf-8")


def commands(group: click.Group, prefix: str = "tracker"):
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from commands(command, path)


def section(title: str) -> str:
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README + "\n## ", re.S | re.M)
    assert found, f"the README has no '## {title}' section"
    return found.group(1)


def test_every_command_and_option_is_in_the_readmes_commands_table():
    table = section("Commands")
    missing = []
    for path, command in commands(cli):
        rows = [line for line in table.splitlines() if line.startswith(f"| `{path}") and
                (line[len(f"| `{path}"):][:1] in (" ", "`"))]
        if not rows:
            missing.append(path)
            continue
        if isinstance(command, click.Group):
            continue
        for parameter in command.params:
            if not isinstance(parameter, click.Option) or parameter.name in ("home", "verbose", "help"):
                continue
            names = parameter.opts + parameter.secondary_opts
            if not any(re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", row) for row in rows for name in names):
                missing.append(f"{path} {names[0]}")
    assert missing == [], f"not in the README's commands table: {missing}"


def test_every_setting_is_in_the_readmes_configuration_table():
    table = section("Configuration")
    missing = [option.env for option in OPTIONS if f"`{option.env}`" not in table]
    missing += [f"[{option.section}] {option.key}" for option in OPTIONS if f"`{option.key}`" not in table]
    assert missing == [], f"not in the README's configuration table: {missing}"
    for secret in ("NCBI_API_KEY", "TRACKER_SMTP_PASSWORD", "TRACKER_CONFIG", "TRACKER_HOME"):
        assert f"`{secret}`" in table


def test_the_readme_opens_with_the_two_commands_and_stays_short():
    lines = README.splitlines()
    block = "\n".join(lines[:8])
    assert "pip install . && " in block and "tracker run" in block
    assert 'pip install -e ".[test]" && ' in block and "pytest" in block
    assert len(lines) <= 220, f"the README has {len(lines)} lines: move detail to docs/"


def test_every_relative_link_in_the_docs_resolves():
    broken = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.name}: {target}")
    assert broken == []


def test_the_layout_table_lists_every_package_in_its_layer_order():
    """docs/operations.md's Layout names each package and top-level module of tracker/, in the order of the layers
    tests/test_layers.py enforces, and every path it names exists."""
    from tests.test_layers import LAYERS

    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    table = text[text.index("## Layout"):].split("\n\n")[1]
    first_cells = [line.split("|")[1] for line in table.splitlines()[2:]]
    named = [re.findall(r"`([^`]+)`", cell) for cell in first_cells]
    package = REPO / "tracker"
    documented: list[str] = []
    for names in named:
        for name in names:
            path = name if "/" in name else f"tracker/{name}"
            assert (REPO / path.rstrip("/")).exists(), f"docs/operations.md names {name}, which does not exist"
            if path.startswith("tracker/"):
                documented.append(path.removeprefix("tracker/").rstrip("/").removesuffix(".py"))
    existing = sorted({path.stem for path in package.glob("*.py") if path.stem not in ("__init__", "__main__")}
                      | {path.name for path in package.iterdir() if (path / "__init__.py").exists()})
    assert sorted(set(existing) - set(documented)) == []
    layer = {name: index for index, (_, names) in enumerate(LAYERS) for name in names}
    order = [layer[name] for name in documented if name in layer]
    assert order == sorted(order)
