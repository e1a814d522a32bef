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
