"""The recipe in a real (local, offline) buildout: options resolved by buildout, hostout's
extends, plugin eggs, bin/hostout generation and staleness."""

import json
from pathlib import Path

import pytest

from buildouts import PLUGIN, buildout, hostout, write


def options(directory: Path) -> dict:
    return json.loads((directory / "parts/hostout/hostout.json").read_text())["hosts"]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bo")
    write(d, "fab1.py", """
        def one():
            'from fab1'
        def shared():
            'fab1 version'
    """)
    write(d, "fab2.py", """
        def shared():
            'fab2 version'
    """)
    write(d, "base.cfg", f"""
        [buildout]
        develop = {PLUGIN}
        parts = host1 host2

        [defaults]
        user = deploy
        python-version = 3.11

        [host1]
        <= defaults
        recipe = collective.hostout
        host = example.invalid:2222
        fabfiles = fab1.py
        pre-commands = stop-app
        extends = hostout.myplugin
        param1 = blah

        [host2]
        recipe = collective.hostout
        extends = host1
        fabfiles = fab2.py
        pre-commands = prepare
        post-commands = start
        path = /srv/${{host1:user}}/app
    """)
    write(d, "buildout.cfg", """
        [buildout]
        extends = base.cfg

        [host1]
        post-commands += notify
    """)
    buildout(d)
    return d


def test_buildout_resolves_and_hostout_merges(built: Path):
    h1, h2 = options(built)["host1"], options(built)["host2"]
    assert h1["options"]["user"] == "deploy"  # <= macro, done by buildout
    assert h1["options"]["post-commands"].split() == ["notify"]  # += from the extending cfg
    assert h1["options"]["plugin-greeting"] == "hello from hostout.myplugin"  # plugin recipe
    assert h1["plugins"] == ["hostout.myplugin"]
    assert h2["options"]["path"] == "/srv/deploy/app"  # ${...}
    assert h2["options"]["fabfiles"].splitlines() == [str(built / "fab1.py"),
                                                      str(built / "fab2.py")]
    assert h2["options"]["pre-commands"].splitlines() == ["stop-app", "prepare"]
    assert h2["options"]["post-commands"].splitlines() == ["notify", "start"]
    assert h2["options"]["param1"] == "blah"  # inherited
    assert "path" not in h1["options"]  # defaults are not written, so not inherited
    assert (built / "parts/hostout/hostout.json").stat().st_mode & 0o777 == 0o600


def test_bin_hostout_lists_hosts_and_commands(built: Path):
    bare = hostout(built)
    assert bare.returncode == 0
    assert bare.stdout.splitlines() == [
        "cmdline is: bin/hostout host1 [host2...] [all] cmd1 [cmd2...] [arg1 arg2...]",
        "Valid hosts are: host1 host2",
    ]
    listing = hostout(built, "host2").stdout
    lines = listing.splitlines()
    assert lines[1] == "Valid commands are:"
    names = [ln.split(":")[0].strip() for ln in lines[2:]]
    assert names == sorted(names)
    assert {"mycommand", "one", "shared", "run", "sudo"} <= set(names)
    assert any("mycommand" in ln and "example of command from hostout.myplugin" in ln
               for ln in lines)
    assert any(ln.split(":")[0].strip() == "shared" and "fab2 version" in ln for ln in lines)
    assert any(ln.split(":")[0].strip() == "sudo" and "announced by the plugin" in ln
               for ln in lines)


def test_unknown_host_and_command_exit_nonzero_naming_valid_ones(built: Path):
    proc = hostout(built, "nohost", "run")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "Error: unknown host 'nohost'; valid hosts are: host1, host2"
    proc = hostout(built, "host1", "frobnicate")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("Error: host1: unknown command 'frobnicate'; valid")
    assert "mycommand" in proc.stderr


def test_stale_options_are_refused(tmp_path: Path):
    write(tmp_path, "buildout.cfg", """
        [buildout]
        parts = h
        [h]
        recipe = collective.hostout
        host = example.invalid
    """)
    buildout(tmp_path)
    cfg = tmp_path / "buildout.cfg"
    cfg.write_text(cfg.read_text().replace("example.invalid", "other.invalid"))
    proc = hostout(tmp_path, "h", "run", "true")
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("Error: buildout.cfg changed after the last bin/buildout; "
                                   "run bin/buildout so hostout acts on the current options")
    buildout(tmp_path)
    assert options(tmp_path)["h"]["options"]["host"] == "other.invalid"


@pytest.mark.parametrize(
    ("option", "message"),
    [("fabfiles = missing.py", "h: fabfiles: no such file"),
     ("python-version = 2.7", "h: option python-version = '2.7' is not a Python 3"),
     ("python-version = 2.6", "hostout 2 deploys Python 3 buildouts only; set "
                              "python-version to the 3.X your buildout runs on"),
     ("buildout-password = secret", "h: option buildout-password is hostout 1's"),
     ("host = bad:port:x:", "h: option host"),
     ("path = /srv/q$(touch /tmp/x)", "h: option path = '/srv/q$(touch /tmp/x)' is not a "
                                      "safe path"),
     ("buildout-user = bo;id", "h: option buildout-user = 'bo;id' is not a user"),
     ("extends = no.such.egg.anywhere", "h: extends = no.such.egg.anywhere: not a part")],
)
def test_bad_options_fail_the_buildout_with_one_clear_line(tmp_path: Path, option, message):
    write(tmp_path, "buildout.cfg", f"""
        [buildout]
        parts = h
        index = file://{tmp_path}/no-index
        [h]
        recipe = collective.hostout
        {option}
    """)
    proc = buildout(tmp_path, check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_versions_file_written_and_extending_it_does_not_make_options_stale(tmp_path: Path):
    # the seed's trick: extend hostoutversions.cfg and commit it
    # (a pin buildout reads, so the file is one of the buildout's sources)
    write(tmp_path, "hostoutversions.cfg", "[versions]\nnot-used-here = 1.0\n")
    write(tmp_path, "buildout.cfg", """
        [buildout]
        extends = hostoutversions.cfg
        parts = h
        [h]
        recipe = collective.hostout
        host = example.invalid
    """)
    buildout(tmp_path)
    written = (tmp_path / "hostoutversions.cfg").read_text()
    assert "\nzc.buildout = " in written and "\nsetuptools = " in written
    assert "not-used-here" not in written  # only what this build really installed
    proc = hostout(tmp_path, "h")
    assert proc.returncode == 0
    assert "changed after the last bin/buildout" not in proc.stderr


BROKEN = PLUGIN.parent / "brokenrecipe"
FABONLY = PLUGIN.parent / "fabonly"


def test_an_import_error_inside_a_plugin_recipe_fails_the_buildout(tmp_path: Path):
    write(tmp_path, "buildout.cfg", f"""
        [buildout]
        develop = {BROKEN}
        parts = h
        [h]
        recipe = collective.hostout
        extends = hostout.brokenrecipe
    """)
    proc = buildout(tmp_path, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert ("h: extends = hostout.brokenrecipe: the plugin's recipe failed to import "
            "(ModuleNotFoundError: No module named 'hostout_dependency_nobody_installed')"
            in text)
    assert "Traceback" not in text
    assert not (tmp_path / "parts/hostout/hostout.json").exists()


def test_a_plugin_without_a_recipe_is_only_its_fabfile(tmp_path: Path):
    write(tmp_path, "buildout.cfg", f"""
        [buildout]
        develop = {FABONLY}
        parts = h
        [h]
        recipe = collective.hostout
        extends = hostout.fabonly
    """)
    buildout(tmp_path)
    assert options(tmp_path)["h"]["plugins"] == ["hostout.fabonly"]
    listing = hostout(tmp_path, "h").stdout
    assert "a command of a plugin that has no recipe" in listing
    # naming an entry point explicitly means it must be there
    write(tmp_path, "buildout.cfg", f"""
        [buildout]
        develop = {FABONLY}
        parts = h
        [h]
        recipe = collective.hostout
        extends = hostout.fabonly:custom
    """)
    proc = buildout(tmp_path, check=False)
    assert proc.returncode != 0
    assert ("h: extends = hostout.fabonly:custom: hostout.fabonly has no zc.buildout entry "
            "point 'custom'" in proc.stdout + proc.stderr)


def test_a_buildout_pinning_another_zc_recipe_egg_builds(tmp_path: Path):
    # Zope's buildout pins zc.recipe.egg = 4.0.0: hostout must not bring a zc.recipe.egg of
    # its own into buildout's environment, where it clashed (VersionConflict) with the pin.
    write(tmp_path, "buildout.cfg", """
        [buildout]
        parts = py h
        [versions]
        zc.recipe.egg = 4.0.0
        [py]
        recipe = zc.recipe.egg
        eggs = packaging
        interpreter = py
        [h]
        recipe = collective.hostout
        host = example.invalid
    """)
    buildout(tmp_path)
    assert hostout(tmp_path, "h").returncode == 0
    assert "\nzc.recipe.egg = 4.0.0\n" in (tmp_path / "hostoutversions.cfg").read_text()
