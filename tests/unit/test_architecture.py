"""The layers of ARCHITECTURE.md, checked: lower rooms never import higher ones, and only the
SSH side imports Fabric or paramiko, and only the container side imports docker."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "collective" / "hostout"
PACKAGE = "collective.hostout"

#: Rooms, lowest first. A module may import its own room and the rooms below it.
LAYERS = [
    {"errors", "files", "shell", "shared", "status"},
    {"config"},
    {"output"},
    {"server"},
    {"remote"},
    {"packaging"},
    {"commands"},
    {"steps"},
    {"images"},
    {"builtin", "api", "legacy", "contrib", "hostout"},
    {"plugins"},
    {"runner"},
    {"cli", "recipe", "testing"},
]
WIRE_LIBRARIES = ("fabric", "paramiko", "invoke")
CONTAINER_LIBRARIES = ("docker",)


def room(module: str) -> str:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 else "__init__"


def layer(module: str) -> int:
    name = room(module)
    for index, rooms in enumerate(LAYERS):
        if name in rooms:
            return index
    raise AssertionError(f"{module}: room {name!r} is in no layer of this test")


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        found[".".join([PACKAGE, *parts])] = path
    return found


def imports(module: str, path: Path) -> list[tuple[str, int]]:
    """(imported module, line) of every import, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, node.lineno))
            found += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
    return found


ALL = modules()


@pytest.mark.parametrize("module", [m for m in ALL if room(m) != "__init__"])
def test_no_module_imports_a_higher_layer(module: str):
    mine = layer(module)
    for target, line in imports(module, ALL[module]):
        if target in ALL and room(target) != "__init__":
            assert layer(target) <= mine, (
                f"{module}:{line} imports {target}, a higher layer ({room(target)})")


@pytest.mark.parametrize("module", list(ALL))
def test_only_the_ssh_side_imports_fabric_or_paramiko(module: str):
    if module.startswith(f"{PACKAGE}.remote.ssh"):
        return
    for target, line in imports(module, ALL[module]):
        assert target.split(".")[0] not in WIRE_LIBRARIES, f"{module}:{line} imports {target}"


@pytest.mark.parametrize("module", list(ALL))
def test_only_the_container_side_imports_docker(module: str):
    # bin/hostout works without the docker extra: only this module needs it
    if module == f"{PACKAGE}.remote.container":
        return
    for target, line in imports(module, ALL[module]):
        assert target.split(".")[0] not in CONTAINER_LIBRARIES, f"{module}:{line} imports {target}"


def test_the_check_sees_relative_imports():
    # the resolution above is what makes the two tests bite: prove it on a known import
    found = dict(imports(f"{PACKAGE}.steps.build", ALL[f"{PACKAGE}.steps.build"]))
    assert f"{PACKAGE}.commands.context" in found
    assert f"{PACKAGE}.steps.accounts" in found
