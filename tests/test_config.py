"""Settings: declared once, read env > kizuna.toml > default, bad values fail loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

from kizuna.bootstrap import open_context
from kizuna.config import SETTINGS, load_settings
from kizuna.errors import ConfigError, WorkspaceError
from kizuna.services.workspace import init_workspace

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert f"`{setting.name}`" in readme, f"README.md does not document {setting.name}"
        assert setting.help.strip(), f"{setting.name} has no help text"


def test_environment_beats_file_beats_default(tmp_path: Path) -> None:
    (tmp_path / "kizuna.toml").write_text('[kizuna]\ntimezone = "Europe/Paris"\ncurrency = "EUR"\n')
    s = load_settings(tmp_path, env={"KIZUNA_CURRENCY": "usd"})
    assert s.timezone == "Europe/Paris" and "kizuna.toml" in s.sources["timezone"]
    assert s.currency == "USD" and s.sources["currency"] == "environment variable KIZUNA_CURRENCY"
    assert s.import_batch_rows == 200_000 and s.sources["import_batch_rows"] == "default"
    assert s.database_url == f"sqlite:///{tmp_path / 'kizuna.sqlite'}"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"KIZUNA_TIMEZONE": "Tokyo"}, "unknown IANA timezone 'Tokyo'"),
        ({"KIZUNA_CURRENCY": "XYZ"}, "unsupported currency 'XYZ'"),
        ({"KIZUNA_IMPORT_BATCH_ROWS": "-5"}, "positive whole number"),
        ({"KIZUNA_MAX_FIELD_CHARS": "many"}, "max_field_chars"),
    ],
)
def test_bad_values_name_the_setting_and_its_source(
    tmp_path: Path, env: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, env=env)
    assert fragment in str(info.value) and "environment variable KIZUNA_" in str(info.value)


def test_unknown_key_in_the_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "kizuna.toml").write_text('[kizuna]\ntimezon = "UTC"\n')
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(tmp_path, env={})


def test_init_writes_settings_and_refuses_to_overwrite_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KIZUNA_DATABASE_URL", raising=False)
    ctx = init_workspace(tmp_path / "ws", timezone="America/New_York", currency="USD")
    assert ctx.settings.timezone == "America/New_York" and ctx.settings.currency_exponent == 2
    ctx.dispose()
    with pytest.raises(WorkspaceError, match="already exists"):
        init_workspace(tmp_path / "ws", timezone="UTC")
    with pytest.raises(ConfigError):
        init_workspace(tmp_path / "bad", timezone="Mars/Olympus")
    assert not (tmp_path / "bad" / "kizuna.toml").exists()


def test_a_folder_that_is_not_a_workspace_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KIZUNA_DATABASE_URL", raising=False)
    with pytest.raises(WorkspaceError, match="not a Kizuna workspace"):
        open_context(tmp_path)
