"""The key store: BIND-format files, slots, modes, and what BIND tools make of them."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import dns.dnssec
import dns.name
import pytest

from authserver.keys import KeyStore
from rootcanary.errors import KeyStoreError

ALGORITHMS = (5, 7, 8, 10, 13, 14, 15, 16)


def _key(store: KeyStore, zone: str, slot: str, alg: int = 13, sep: bool = True):  # type: ignore[no-untyped-def]
    with store.locked():
        store.check_permissions()
        return store.key(
            zone, slot, alg, sep, rsa_bits=1024 if alg in (5, 7, 8, 10) else 2048
        )


def test_keys_are_bind_files_with_safe_modes(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    key = _key(store, "canary.test.", "ksk")
    assert key.stem == f"Kcanary.test.+013+{key.tag:05d}"
    private = tmp_path / "keys" / f"{key.stem}.private"
    public = tmp_path / "keys" / f"{key.stem}.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith(
        "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\n"
    )
    assert "canary.test. IN DNSKEY 257 3 13 " in public.read_text()
    root = _key(store, ".", "ksk")
    assert root.stem.startswith("K.+013+")


def test_slots_are_stable_and_distinct(tmp_path: Path) -> None:
    first = _key(KeyStore(tmp_path), ".", "ksk")
    again = _key(KeyStore(tmp_path), ".", "ksk")
    assert again.dnskey == first.dnskey and again.stem == first.stem
    second = _key(KeyStore(tmp_path), ".", "ksk2")
    zsk = _key(KeyStore(tmp_path), ".", "zsk", sep=False)
    tags = {first.tag, first.revoked_tag(), second.tag, second.revoked_tag(), zsk.tag}
    assert len(tags) == 5  # no clash, revoked forms included
    assert first.revoked_tag() == dns.dnssec.key_id(first.published(revoke=True))
    assert first.published(revoke=True).flags == 385


def test_group_readable_private_key_is_refused(tmp_path: Path) -> None:
    key = _key(KeyStore(tmp_path), "canary.test.", "ksk")
    private = tmp_path / "keys" / f"{key.stem}.private"
    os.chmod(private, 0o640)
    with pytest.raises(KeyStoreError, match=r"mode 0640.*chmod 600"):
        _key(KeyStore(tmp_path), "canary.test.", "ksk")
    os.chmod(private, 0o604)
    with pytest.raises(KeyStoreError, match=re.escape(str(private))):
        _key(KeyStore(tmp_path), "canary.test.", "other")


def test_broken_private_file_names_the_file_not_the_key(tmp_path: Path) -> None:
    key = _key(KeyStore(tmp_path), "canary.test.", "ksk")
    private = tmp_path / "keys" / f"{key.stem}.private"
    secret_line = next(
        line
        for line in private.read_text().splitlines()
        if line.startswith("PrivateKey")
    )
    private.write_text(
        "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: !!\n"
    )
    with pytest.raises(KeyStoreError) as info:
        _key(KeyStore(tmp_path), "canary.test.", "ksk")
    assert str(private) in str(info.value)
    assert secret_line.split()[1] not in str(info.value)


@pytest.mark.skipif(
    shutil.which("dnssec-dsfromkey") is None, reason="bind9-utils missing"
)
@pytest.mark.parametrize("alg", ALGORITHMS)
def test_bind_tools_read_our_key_files(tmp_path: Path, alg: int) -> None:
    """dnssec-dsfromkey reads the .key; dnssec-signzone signs with the .private
    and verifies its own signatures (-a), so BIND parses every field."""
    store = KeyStore(tmp_path)
    zone = "k.test."
    ksk = _key(store, zone, "ksk", alg)
    zsk = _key(store, zone, "zsk", alg, sep=False)
    keydir = tmp_path / "keys"
    ds = subprocess.run(
        ["dnssec-dsfromkey", "-2", str(keydir / f"{ksk.stem}.key")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    ours = dns.dnssec.make_ds(dns.name.from_text(zone), ksk.dnskey, 2)
    assert ds[-1].lower() == ours.digest.hex() and int(ds[3]) == ksk.tag
    zonefile = tmp_path / "k.test.zone"
    zonefile.write_text(
        "$TTL 300\n"
        f"{zone} IN SOA ns.{zone} h.{zone} 1 3600 600 86400 300\n"
        f"{zone} IN NS ns.{zone}\n"
        f"ns.{zone} IN A 192.0.2.1\n"
        f"$INCLUDE {keydir / (ksk.stem + '.key')}\n"
        f"$INCLUDE {keydir / (zsk.stem + '.key')}\n"
    )
    signed = subprocess.run(
        [
            "dnssec-signzone",
            "-a",
            "-K",
            str(keydir),
            "-d",
            str(tmp_path),
            "-o",
            zone,
            "-f",
            "-",
            str(zonefile),
            str(keydir / ksk.stem),
            str(keydir / zsk.stem),
        ],
        capture_output=True,
        text=True,
    )
    assert signed.returncode == 0, signed.stderr
    assert f" {alg} 2 300 " in signed.stdout or f" {alg} 1 300 " in signed.stdout


PHASES = {
    # phase: [[zone.keys]] of the root, as a rollover replay would write them
    "publish": [("ksk", "ksk", ["dnskey"], False), ("ksk2", "ksk", [], False)],
    "roll": [("ksk", "ksk", [], False), ("ksk2", "ksk", ["dnskey"], False)],
    "revoke": [("ksk", "ksk", ["dnskey"], True), ("ksk2", "ksk", ["dnskey"], False)],
    "remove": [("ksk2", "ksk", ["dnskey"], False)],
}


def _phase_scenario(path: Path, phase: str) -> Path:
    lines = ['name = "roll"', "[[zone]]", 'apex = "."']
    for slot, kind, signs, revoke in [*PHASES[phase], ("zsk", "zsk", ["zone"], False)]:
        signed = ", ".join(f'"{s}"' for s in signs)
        lines += [
            "[[zone.keys]]",
            f'slot = "{slot}"',
            f'type = "{kind}"',
            f"signs = [{signed}]",
            f"revoke = {'true' if revoke else 'false'}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_rollover_phases_are_scenario_data(tmp_path: Path) -> None:
    """Publish, roll, revoke, remove: the same slots keep their keys, the DNSKEY
    set and its signers follow the scenario, and a revoked KSK signs the set
    in its revoked form (RFC 5011 §2.1)."""
    import dns.rdatatype

    from authserver.anchor import root_trust_anchor
    from authserver.build import ZoneBuilder
    from rootcanary.scenario import load_scenario

    state = tmp_path / "state"
    seen: dict[str, dict[str, int]] = {}
    for phase in PHASES:
        scenario = load_scenario(_phase_scenario(tmp_path / f"{phase}.toml", phase))
        zone = ZoneBuilder(scenario, state, (("127.0.0.1", 53),)).build().zone(".")
        dnskeys = zone.apex.rrsets[dns.rdatatype.DNSKEY]
        keys = {dns.dnssec.key_id(k): k for k in dnskeys.rrset}
        signers = {sig.key_tag for sig in dnskeys.sigs}  # type: ignore[union-attr]
        for sig in dnskeys.sigs:  # type: ignore[union-attr]
            single = dns.rrset.from_rdata_list(".", 60, [keys[sig.key_tag]])
            dns.dnssec.validate(
                dnskeys.rrset,
                dns.rrset.from_rdata_list(".", 60, [sig]),
                {dns.name.root: single},
            )
        anchor = root_trust_anchor(scenario, state)
        seen[phase] = {k.slot: k.tag for k in anchor.keys}
        ksk = [k for k in dnskeys.rrset if k.flags & 1]
        if phase == "publish":
            assert len(ksk) == 2 and len(signers) == 1
        elif phase == "roll":
            assert len(ksk) == 2 and len(signers) == 1
            assert set(seen["roll"]) == {"ksk2"}  # the anchor is the signing KSK
        elif phase == "revoke":
            revoked = [k for k in ksk if k.flags == 385]
            assert len(revoked) == 1 and dns.dnssec.key_id(revoked[0]) in signers
            assert len(signers) == 2
        else:
            assert len(ksk) == 1 and ksk[0].flags == 257
    # The slots kept their keys through all phases.
    assert seen["publish"] == {"ksk": seen["publish"]["ksk"]}
    assert seen["roll"]["ksk2"] == seen["revoke"]["ksk2"] == seen["remove"]["ksk2"]
    assert seen["roll"]["ksk2"] != seen["publish"]["ksk"]
