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


def _importers_of(prefix: str) -> set[str]:
    return {module for module, path in ALL.items()
            for target, _ in imports(module, path) if target.split(".")[0] == prefix}


def test_plugins_shipped_with_hostout_never_import_each_other():
    for module, path in ALL.items():
        if room(module) != "plugins" or len(module.split(".")) < 4:
            continue
        mine = module.split(".")[3]
        for target, line in imports(module, path):
            parts = target.split(".")
            if target.startswith(f"{PACKAGE}.plugins.") and len(parts) > 3:
                assert parts[3] == mine, f"{module}:{line} imports another plugin, {target}"


def test_only_the_cloud_plugin_and_its_test_provider_import_libcloud():
    allowed = {m for m in ALL if m.startswith((f"{PACKAGE}.plugins.cloud",
                                               f"{PACKAGE}.testing.cloud"))}
    assert _importers_of("libcloud") <= allowed
    assert _importers_of("libcloud")  # so the check can fail


def test_the_tunnels_http_proxy_is_plain_python():
    # the paramiko side of the tunnel is tunnel.py; the proxy serves any socket-like stream
    proxy = f"{PACKAGE}.remote.ssh.proxy"
    assert proxy in ALL
    assert not [t for t, _ in imports(proxy, ALL[proxy]) if t.split(".")[0] in WIRE_LIBRARIES]


def test_every_plugin_named_for_extends_is_a_package_with_a_fabfile():
    from collective.hostout.commands.discovery import BUILTIN_PLUGINS

    for name, package in BUILTIN_PLUGINS.items():
        assert f"{package}.fabfile" in ALL, name
        assert room(package) == "plugins", name
