"""Config: one TOML file → frozen settings; every mistake named in one line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway.config import ConfigError, Settings, load_settings, settings_from_dict
from marc.holdings import HoldingsProfile


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIBGATE_CONFIG", raising=False)
    settings = load_settings(None)
    assert settings.storage.url == "sqlite:///var/libgate.db"
    assert [d.name for d in settings.databases] == ["main", "japanese"]
    assert settings.source == "built-in defaults"


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        # The assignment a frozen dataclass forbids is what this test makes: mypy refuses it
        # too [misc], and there is no other way to write it.
        settings.storage.url = "x"  # type: ignore[misc]


def test_file_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "libgate.toml").write_text('[storage]\nurl = "sqlite:///local.db"\n')
    env_file = tmp_path / "env.toml"
    env_file.write_text('[storage]\nurl = "sqlite:///env.db"\n')
    explicit = tmp_path / "explicit.toml"
    explicit.write_text('[storage]\nurl = "sqlite:///explicit.db"\n')
    monkeypatch.delenv("LIBGATE_CONFIG", raising=False)
    assert load_settings(None).storage.url == "sqlite:///local.db"
    monkeypatch.setenv("LIBGATE_CONFIG", str(env_file))
    assert load_settings(None).storage.url == "sqlite:///env.db"
    assert load_settings(str(explicit)).storage.url == "sqlite:///explicit.db"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[storage]\nulr = "sqlite:///x.db"\n', "storage: unknown key 'ulr'"),
        ('[storage]\nurl = "mysql://x"\n', "storage.url"),
        ("[storage]\nbusy_timeout_ms = -1\n", "storage.busy_timeout_ms"),
        ('[storage]\npool_size = "eight"\n', "storage.pool_size: expected a whole number"),
        ("[sorage]\n", "unknown section or key 'sorage'"),
        ('[[databases]]\ntitle = "x"\n', "databases[0]: missing required key 'name'"),
        (
            '[[databases]]\nname = "main"\n[[databases]]\nname = "main"\n',
            "databases[1].name: 'main' is defined twice",
        ),
        (
            '[[databases]]\nname = "main"\nprofile = "nope"\n',
            "databases[0].profile: unknown holdings profile 'nope'",
        ),
        (
            '[[holdings_profiles]]\nname = "x"\nitem_tag = "95"\nbarcode = ["{$f}"]\n',
            "holdings_profiles[0].item_tag",
        ),
        (
            '[[holdings_profiles]]\nname = "x"\nitem_tag = "995"\nbarcode = ["{$f"]\n',
            "holdings_profiles[0].barcode",
        ),
        ("[loader]\nbatch_size = 0\n", "loader.batch_size"),
    ],
)
def test_mistakes_are_named_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(str(path))
    line = str(caught.value)
    assert message in line
    assert "\n" not in line
    assert line.startswith(str(path))


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[storage\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(str(path))


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(str(tmp_path / "nope.toml"))


def test_a_new_holdings_profile_is_configuration() -> None:
    settings = settings_from_dict(
        {
            "databases": [{"name": "main", "profile": "acme"}],
            "holdings_profiles": [
                {
                    "name": "acme",
                    "item_tag": "949",
                    "barcode": ["{$i}"],
                    "call_number": ["{$a} {$b}"],
                    "status_map": {"0": "归还", "1": "借出"},
                    "status": ["{$s}"],
                }
            ],
        }
    )
    profile = settings.profile("acme")
    assert profile.item_tag == "949"
    assert profile.status_map == {"0": "归还", "1": "借出"}
    # The built-in profiles stay available beside it.
    assert settings.profile("bnu").item_tag == "906"
    with pytest.raises(ConfigError, match="unknown holdings profile 'zzz'"):
        settings.profile("zzz")


def test_a_holdings_profile_names_what_is_wrong_with_it() -> None:
    broken = HoldingsProfile(name="x", item_tag="99", location=("{$",))
    assert [(p.attribute, p.why) for p in broken.problems()] == [
        ("item_tag", "'99' is not a 3-character tag"),
        ("barcode", "a profile with item_tag needs a barcode source"),
        ("location", "'{$': placeholders look like {$b} or {905$s}"),
    ]
    with pytest.raises(ConfigError, match=r"holdings_profiles\[0\]\.item_tag: '99' is not"):
        settings_from_dict({"holdings_profiles": [{"name": "x", "item_tag": "99"}]})


def test_the_demo_config_of_make_run_is_valid() -> None:
    from pathlib import Path

    from gateway.config import load_settings

    demo = Path(__file__).resolve().parent.parent / "fixtures" / "config" / "demo.toml"
    settings = load_settings(str(demo))
    assert {a.role for a in settings.sip2.accounts} == {"selfcheck", "desk"}
    assert settings.storage.url == "sqlite:///var/libgate.db"  # the embedded default
