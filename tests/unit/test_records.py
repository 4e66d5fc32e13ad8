"""Host records: what commands recorded about a host fills what its part leaves unset."""

from __future__ import annotations

from pathlib import Path

import pytest

from collective.hostout.config import records
from collective.hostout.config.facts import BuildoutFacts
from collective.hostout.config.optionsfile import OptionsFile
from collective.hostout.errors import ConfigError


def test_the_parts_own_options_win_and_blanks_are_filled():
    record = records.HostRecord({"host": "10.0.0.5:2222", "user": "root", "password": "pw"})
    merged = records.merged({"host": "", "user": "admin"}, record)
    assert merged == {"host": "10.0.0.5:2222", "user": "admin", "password": "pw"}
    assert records.recorded(merged, record, "host")
    assert not records.recorded(merged, record, "user")


def test_written_private_read_back_and_removed(tmp_path: Path):
    record = records.HostRecord({"host": "h"}, {"cloud": {"id": "7"}})
    path = records.write(tmp_path, "web1", record)
    assert path == tmp_path / "hostout/records/web1.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert records.read(tmp_path, "web1") == record
    records.remove(tmp_path, "web1")
    assert not records.read(tmp_path, "web1")


@pytest.mark.parametrize("text", ["{not json", '{"options": {"host": 3}}', "[]"])
def test_a_broken_record_is_one_line_saying_what_to_do(tmp_path: Path, text: str):
    path = tmp_path / "hostout/records/web1.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"web1\.json.*remove it"):
        records.read(tmp_path, "web1")


def test_settings_of_a_host_include_its_record(tmp_path: Path):
    facts = BuildoutFacts.of_directory(tmp_path)
    options = OptionsFile(tmp_path / "parts/hostout/hostout.json", facts,
                          {"web1": {"options": {"user": "deploy"}, "plugins": []}})
    assert options.settings("web1").hostname == "web1"
    records.write(facts.parts_directory, "web1",
                  records.HostRecord({"host": "[2001:db8::5]:2200", "user": "root"}))
    settings = options.settings("web1")
    assert (settings.hostname, settings.port, settings.user) == ("2001:db8::5", 2200, "deploy")
