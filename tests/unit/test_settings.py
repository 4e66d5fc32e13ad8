from pathlib import Path, PurePosixPath

import pytest

from collective.hostout.config.settings import (
    Secret,
    build_settings,
    local_python_version,
    parse_hoststring,
)
from collective.hostout.errors import ConfigError

BD = Path("/srv/bo")


def settings(name="host1", **options):
    return build_settings(name, {k.replace("_", "-"): v for k, v in options.items()},
                          buildout_directory=BD)


def test_seed_defaults():
    s = settings(user="deploy")
    assert s.hostname == "host1" and s.port is None
    assert s.path == PurePosixPath("/var/buildout/host1")
    assert s.buildout_cfg == "buildout.cfg"
    assert s.python_version == local_python_version()
    assert s.buildout_user == "deploy" and s.effective_user == "deploy"
    assert s.buildout_group is None  # mandatory where used: bootstrap_users, setowners
    assert s.versionsfile == BD / "hostoutversions.cfg"
    assert s.host_key_checking == "accept-new"
    assert s.pre_commands == () and s.post_commands == ()


def test_users_chain_and_lists():
    s = settings(user="deploy", buildout_user="bo", pre_commands="a\n\n b c ",
                 sudo_parts="p1 p2", include="etc/\nfiles/x.txt")
    assert (s.buildout_user, s.effective_user) == ("bo", "bo")
    assert s.pre_commands == ("a", "b c")
    assert s.sudo_parts == ("p1", "p2")
    assert s.include == ("etc/", "files/x.txt")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("example.com", ("example.com", None)), ("10.0.0.1:2222", ("10.0.0.1", 2222)),
     ("[::1]:2200", ("::1", 2200)), ("[fe80::1]", ("fe80::1", None)), ("::1", ("::1", None))],
)
def test_hoststring(value, expected):
    assert parse_hoststring(value, part="h") == expected


@pytest.mark.parametrize("value", ["host:0", "host:99999", "host:ssh", "bad host", "[::1]:x"])
def test_bad_hoststring(value):
    with pytest.raises(ConfigError, match="option host"):
        parse_hoststring(value, part="h")


@pytest.mark.parametrize(
    ("options", "message"),
    [({"path": "relative/dir"}, "must be an absolute path"),
     ({"python_version": "2.7"}, "python-version"),
     ({"python_version": "three"}, "python-version"),
     ({"host_key_checking": "no"}, "host-key-checking"),
     ({"connect_timeout": "-3"}, "connect-timeout"),
     ({"port": "abc"}, "port")],
)
def test_malformed_options_are_errors_naming_the_option(options, message):
    with pytest.raises(ConfigError, match=message) as info:
        settings(**options)
    assert str(info.value).startswith("host1: ")
    assert "\n" not in str(info.value)


def test_extra_options_are_attributes_and_underscore_aliases():
    s = build_settings("h", {"option1": "buildout", "identity_file": "keys/h_key",
                             "my-option": "x"}, buildout_directory=BD)
    assert s.option1 == "buildout"
    assert s.my_option == "x"
    assert s.identity_file == BD / "keys/h_key"
    with pytest.raises(AttributeError):
        _ = s.nonexistent


def test_password_never_shows():
    s = settings(password="s3cret")
    assert isinstance(s.password, Secret) and s.password == "s3cret"
    assert "s3cret" not in repr(s)
    assert repr(s.password) == "Secret('****')"


def test_require_names_missing_option():
    with pytest.raises(ConfigError, match="option buildout-group is required"):
        settings().require("buildout-group")
    assert settings(buildout_group="g").require("buildout-group") == "g"


# Values that would reach a remote shell (directly, or through the venv's script wrappers
# which run as the buildout user) must be refused, whatever hostout quotes.
METACHARACTERS = ["$(touch /tmp/x)", "`id`", "a;b", "a|b", "a&b", "a b", "a\nb", "a'b", 'a"b',
                  "a>b", "a<b", "*", "?", "a\\b", "~root", "a{b,c}", "a#b", "!x", "a\tb"]
CHECKED = {
    "path": lambda v: f"/srv/{v}",
    "buildout-cache": lambda v: f"/srv/cache{v}",
    "buildout-user": lambda v: f"bo{v}",
    "effective-user": lambda v: f"app{v}",
    "buildout-group": lambda v: f"grp{v}",
    "buildout": lambda v: f"prod{v}.cfg",
    "parts": lambda v: f"app{v}",
    "sudo-parts": lambda v: f"root{v}",
    "system-packages": lambda v: f"gcc{v}",
    "hostos": lambda v: f"debian{v}",
    "user": lambda v: f"deploy{v}",
}


@pytest.mark.parametrize("option", sorted(CHECKED))
@pytest.mark.parametrize("evil", METACHARACTERS)
def test_unsafe_values_are_refused_naming_the_option(option, evil):
    value = CHECKED[option](evil)
    if option in ("parts", "sudo-parts", "system-packages") and evil in ("a b", "a\nb",
                                                                         "a\tb"):
        value = value.replace(evil, "x")  # a list: blanks separate its items
        value += " $(id)"
    with pytest.raises(ConfigError, match=f"option {option} = ") as info:
        build_settings("h", {option: value}, buildout_directory=BD)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("option", "value"), [
    ("path", "/var/buildout/../etc"), ("buildout", "../outside.cfg"), ("path", "relative"),
    ("buildout-cache", "../cache")])
def test_paths_cannot_climb_out(option, value):
    with pytest.raises(ConfigError, match=f"option {option} = "):
        build_settings("h", {option: value}, buildout_directory=BD)


def test_ordinary_values_pass():
    s = build_settings("h", {"path": "/srv/my-app_2.0/current", "buildout-user": "bo_1",
                             "effective-user": "app-user", "buildout-group": "www-data",
                             "buildout": "deploy/prod.cfg", "parts": "app supervisor.conf",
                             "system-packages": "libxml2-dev g++ python3.11-dev",
                             "user": "john.doe", "buildout-cache": "cache/v2"},
                       buildout_directory=BD)
    assert s.layout.cache == PurePosixPath("/srv/my-app_2.0/current/cache/v2")
    assert s.system_packages == ("libxml2-dev", "g++", "python3.11-dev")


@pytest.mark.parametrize(("value", "expected"), [("3.11", "3.11"), ("3.11.7", "3.11"),
                                                 ("3.9", "3.9")])
def test_python_version_takes_hostout_1_spelling(value, expected):
    assert build_settings("h", {"python-version": value},
                          buildout_directory=BD).python_version == expected


def test_python_2_gets_a_hint():
    with pytest.raises(ConfigError, match="hostout 2 deploys Python 3 buildouts only"):
        build_settings("h", {"python-version": "2.6"}, buildout_directory=BD)


@pytest.mark.parametrize("option", ["buildout-password", "no_sudo", "force-python-compile",
                                    "python-path", "shell"])
def test_hostout_1_options_without_meaning_fail_with_what_replaces_them(option):
    with pytest.raises(ConfigError) as err:
        build_settings("h", {option: "x"}, buildout_directory=BD)
    assert str(err.value).startswith(f"h: option {option.replace('_', '-')} is hostout 1's "
                                     "and has no meaning in hostout 2: ")
