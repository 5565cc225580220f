"""`[union]` and `[[union.targets]]`: the keys other tools rely on, and a clear error for each
wrong value."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, settings_from_dict


def test_targets_take_the_contract_keys() -> None:
    settings = settings_from_dict(
        {
            "union": {
                "timeout": 8,
                "targets": [
                    {
                        "name": "北京大学图书馆",
                        "url": "z3950:z3950.lib.pku.example:210/PKU01",
                        "timeout": 5,
                        "agency_id": "ISIL:CN-PKU",
                        "syntax": "usmarc",
                        "encoding": "gbk",
                        "max_records": 50,
                    },
                    {
                        "name": "上海图书馆",
                        "url": "http://127.0.0.1:8080/main",
                        "sru_version": "2.0",
                        "syntax": "xml",
                        "enabled": False,
                    },
                ],
            }
        }
    )
    pku, shl = settings.union.targets
    assert (pku.protocol, pku.encoding, pku.max_records, pku.timeout) == ("z3950", "gbk", 50, 5)
    assert (shl.protocol, shl.sru_version, shl.enabled) == ("sru", "2.0", False)
    assert settings.union.timeout == 8
    assert settings.union.target("上海图书馆") is shl


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"url": "z3950:h:210/db"}, "missing required key 'name'"),
        ({"name": "x", "url": "ftp://h/db"}, "neither z3950:HOST:PORT/DATABASE"),
        ({"name": "x", "url": "z3950:h/db"}, "neither z3950:HOST:PORT/DATABASE"),
        ({"name": "x", "url": "z3950:h:210/db", "encoding": "klingon"}, "unknown encoding"),
        ({"name": "x", "url": "z3950:h:210/db", "syntax": "marc"}, "syntax: one of"),
        ({"name": "x", "url": "http://h/sru", "sru_version": "3.0"}, "sru_version: one of"),
        ({"name": "x", "url": "http://h/sru", "timeout": 0}, "timeout: seconds"),
        ({"name": "x", "url": "http://h/sru", "agency_id": "PKU"}, "not TYPE:VALUE"),
        ({"name": "x", "url": "http://h/sru", "max_records": 0}, "max_records: 1 to 1000"),
        ({"name": "x", "url": "http://h/sru", "colour": "red"}, "unknown key 'colour'"),
        (
            {"name": "x", "url": "z3950:h:210/db", "holdings_profile": "nowhere"},
            "holdings_profile: unknown holdings profile 'nowhere'",
        ),
    ],
)
def test_a_wrong_target_is_named_with_its_key(target: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_dict({"union": {"targets": [target]}})


def test_target_names_are_unique() -> None:
    twice = {"name": "同名", "url": "http://h/sru"}
    with pytest.raises(ConfigError, match="name"):
        settings_from_dict({"union": {"targets": [twice, twice]}})


def test_an_opac_target_with_a_holdings_profile() -> None:
    target = {
        "name": "上海图书馆",
        "url": "z3950:127.0.0.1:2100/main",
        "syntax": "opac",
        "holdings_profile": "libgate",
    }
    [shl] = settings_from_dict({"union": {"targets": [target]}}).union.targets
    assert (shl.syntax, shl.holdings_profile) == ("opac", "libgate")


def test_the_z3950_connection_pool_limits() -> None:
    default = settings_from_dict({}).union
    assert (default.idle_connections_per_target, default.idle_seconds) == (2, 60.0)
    union = settings_from_dict(
        {"union": {"idle_connections_per_target": 0, "idle_seconds": 2.5}}
    ).union
    assert (union.idle_connections_per_target, union.idle_seconds) == (0, 2.5)


@pytest.mark.parametrize(
    ("union", "message"),
    [
        ({"idle_connections_per_target": -1}, "idle_connections_per_target: 0 to 100, got -1"),
        ({"idle_connections_per_target": 101}, "idle_connections_per_target: 0 to 100"),
        ({"idle_connections_per_target": 1.5}, "expected a whole number"),
        ({"idle_seconds": 0}, "idle_seconds: seconds, more than 0 and at most 3600"),
        ({"idle_seconds": 3601}, "idle_seconds: seconds, more than 0"),
    ],
)
def test_wrong_pool_limits_are_named(union: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_dict({"union": union})


def test_the_portal_caps_live_union_searches() -> None:
    assert settings_from_dict({"web": {"max_union_searches": 4}}).web.max_union_searches == 4
    assert settings_from_dict({}).web.max_union_searches == 16
    with pytest.raises(ConfigError, match=r"web\.max_union_searches"):
        settings_from_dict({"web": {"max_union_searches": 0}})
    assert settings_from_dict({}).web.max_union_searches_per_address == 2
    with pytest.raises(ConfigError, match=r"web\.max_union_searches_per_address"):
        settings_from_dict({"web": {"max_union_searches_per_address": 0}})
