"""The [server], [zone_defaults] and [[zone]] schema: defaults and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from authserver_support import CANARY

from authserver.content import plan_zones
from rootcanary.errors import ScenarioError
from rootcanary.scenario import load_scenario
from rootcanary.scenario.zones import matrix_labels, signable_algorithms


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "s.toml"
    path.write_text(text)
    return load_scenario(path)


def test_canary_scenario_serves_root_tld_and_test_zone() -> None:
    scenario = load_scenario(CANARY)
    assert [z.apex for z in scenario.zones] == [".", "test.", "canary.test."]
    assert scenario.server.listen == (("127.0.0.1", 53),)
    canary = scenario.zone("canary.test.")
    assert canary.test_names and canary.matrix == "all" and canary.big_size == 1425
    assert [k.slot for k in scenario.zone(".").keys] == ["ksk", "zsk"]
    planned = plan_zones(scenario.zones)
    parents = {p.spec.apex: p.parent for p in planned}
    assert parents["."] is None and parents["test."] == "."
    assert parents["canary.test."] == "test."
    assert parents["bogus-ds.canary.test."] == "canary.test."
    assert parents["d2a13n1.canary.test."] == "canary.test."


def test_matrix_all_is_what_this_machine_can_sign() -> None:
    labels = matrix_labels(load_scenario(CANARY).zone("canary.test."))
    usable = signable_algorithms()
    assert "d1a5n3" not in labels  # RSASHA1 is not NSEC3-capable (RFC 5155 §2)
    assert {f"d{d}a{a}n1" for d in (1, 2, 4) for a in usable} <= set(labels)
    assert len(labels) == len(set(labels))


def test_key_slots_as_data(tmp_path: Path) -> None:
    scenario = _load(
        tmp_path,
        '[[zone]]\napex = "."\n'
        '[[zone.keys]]\nslot = "ksk"\ntype = "ksk"\nrevoke = true\n'
        '[[zone.keys]]\nslot = "ksk2"\ntype = "ksk"\n'
        '[[zone.keys]]\nslot = "zsk"\ntype = "zsk"\n'
        '[[zone.keys]]\nslot = "ksk3"\ntype = "ksk"\npublish = false\nsigns = []\n',
    )
    keys = {k.slot: k for k in scenario.zone(".").keys}
    assert (
        keys["ksk"].revoke and keys["ksk"].signs_dnskey and not keys["ksk"].signs_zone
    )
    assert keys["ksk2"].sep and keys["ksk2"].signs_dnskey
    assert keys["zsk"].signs_zone and not keys["zsk"].sep
    assert not keys["ksk3"].publish and not keys["ksk3"].signs_dnskey


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ('[[zone]]\napex = "x."\nalgorithm = 3\n', "zone[0].algorithm", "signs with"),
        ('[[zone]]\napex = "x."\nalgoritm = 13\n', "zone[0]", "unknown key 'algoritm'"),
        (
            '[[zone]]\napex = "x."\nmatrix = ["d3a13n1"]\ntest_names = true\n',
            "zone[0].matrix[0]",
            "d<digest>",
        ),
        ('[[zone]]\napex = "x."\nmatrix = "all"\n', "zone[0].matrix", "test_names"),
        (
            '[[zone]]\napex = "x."\n'
            'signature_validity = "1d"\nsignature_refresh = "2d"\n',
            "zone[0].signature_refresh",
            "below",
        ),
        (
            '[[zone]]\napex = "x."\n[[zone.keys]]\nslot = "Bad Slot"\ntype = "ksk"\n',
            "zone[0].keys[0].slot",
            "lower-case",
        ),
        (
            '[[zone]]\napex = "x."\n[[zone.keys]]\nslot = "k"\ntype = "zsk"\n',
            "zone[0].keys",
            "DNSKEY set",
        ),
        (
            '[[zone]]\napex = "x."\n[[zone.delegations]]\nname = "y.x."\n'
            'nameservers = [{ name = "ns.y.x." }]\n',
            "zone[0].delegations[0].nameservers",
            "glue",
        ),
        (
            '[[zone]]\napex = "x."\n[[zone.delegations]]\nname = "other."\n'
            'nameservers = [{ name = "ns.z." }]\n',
            "zone[0].delegations[0].name",
            "not below",
        ),
        (
            '[[zone]]\napex = "x."\nrecords = ["www IN A 999.1.1.1"]\n',
            "zone[0].records[0]",
            "not a record",
        ),
        ('[[zone]]\napex = "x."\nanswer_v4 = "::1"\n', "zone[0].answer_v4", "IPv4"),
        ('[server]\nlisten = ["127.0.0.1:99999"]\n', "server.listen[0]", "bad port"),
        ("[server]\nworkers = 0\n", "server.workers", "at least 1"),
        ('[[zone]]\napex = "x."\n[[zone]]\napex = "X"\n', "zone[1].apex", "twice"),
    ],
)
def test_bad_scenarios_name_file_and_key(
    tmp_path: Path, text: str, where: str, what: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        _load(tmp_path, text)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 's.toml'}: {where}:"), message
    assert what in message
