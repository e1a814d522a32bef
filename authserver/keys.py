"""DNSSEC keys in a state directory, as BIND-format ``K<zone>+<alg>+<tag>`` files.

A zone holds its keys under stable slot names ("ksk", "zsk", later "ksk2"
during a rollover). ``keys/slots.json`` maps (zone, slot, algorithm, SEP) to
the file stem; the key files themselves are exactly what ``dnssec-keygen``
writes, so BIND, ldns and Knot tools read them. Private files are created
0600 and a store with any group- or world-accessible private file is refused.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import dns.dnssec
import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from dns.dnssecalgs import get_algorithm_cls
from dns.dnssecalgs.base import GenericPrivateKey
from dns.rdtypes.ANY.DNSKEY import DNSKEY

from rootcanary.errors import KeyStoreError

log = logging.getLogger("authserver.keys")

ZONE_FLAG, SEP_FLAG, REVOKE_FLAG = 256, 1, 128

# Mnemonics as BIND writes them in the "Algorithm:" line.
_BIND_ALG_NAMES = {
    5: "RSASHA1",
    7: "NSEC3RSASHA1",
    8: "RSASHA256",
    10: "RSASHA512",
    13: "ECDSAP256SHA256",
    14: "ECDSAP384SHA384",
    15: "ED25519",
    16: "ED448",
}
_RSA = (5, 7, 8, 10)
_RSA_FIELDS = (
    "Modulus",
    "PublicExponent",
    "PrivateExponent",
    "Prime1",
    "Prime2",
    "Exponent1",
    "Exponent2",
    "Coefficient",
)
_EC_CURVES: dict[int, tuple[type[ec.EllipticCurve], int]] = {
    13: (ec.SECP256R1, 32),
    14: (ec.SECP384R1, 48),
}


@dataclass(frozen=True)
class ZoneKey:
    """One key of a zone. ``dnskey`` carries the base flags (256 or 257)."""

    zone: str
    slot: str
    algorithm: int
    dnskey: DNSKEY
    stem: str  # K<zone>+<alg>+<tag>, the BIND file name without .key/.private
    private: GenericPrivateKey = field(repr=False, compare=False)

    @property
    def tag(self) -> int:
        return dns.dnssec.key_id(self.dnskey)

    @property
    def sep(self) -> bool:
        return bool(self.dnskey.flags & SEP_FLAG)

    def published(self, revoke: bool = False) -> DNSKEY:
        """The DNSKEY as published: with REVOKE (flags | 128) when revoked."""
        if not revoke:
            return self.dnskey
        return cast(DNSKEY, self.dnskey.replace(flags=self.dnskey.flags | REVOKE_FLAG))

    def revoked_tag(self) -> int:
        return dns.dnssec.key_id(self.published(revoke=True))


def _b64(value: int | bytes) -> str:
    if isinstance(value, int):
        value = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.b64encode(value).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.strip(), validate=True)


def private_key_text(key: GenericPrivateKey, algorithm: int, created: str) -> str:
    """The BIND ``.private`` file (format v1.3) of a key."""
    lines = [
        "Private-key-format: v1.3",
        f"Algorithm: {algorithm} ({_BIND_ALG_NAMES[algorithm]})",
    ]
    raw: Any = key.key  # type: ignore[attr-defined]  # the cryptography key object
    if algorithm in _RSA:
        numbers = raw.private_numbers()
        values = (
            numbers.public_numbers.n,
            numbers.public_numbers.e,
            numbers.d,
            numbers.p,
            numbers.q,
            numbers.dmp1,
            numbers.dmq1,
            numbers.iqmp,
        )
        lines += [
            f"{name}: {_b64(v)}" for name, v in zip(_RSA_FIELDS, values, strict=True)
        ]
    elif algorithm in _EC_CURVES:
        size = _EC_CURVES[algorithm][1]
        scalar = raw.private_numbers().private_value.to_bytes(size, "big")
        lines.append(f"PrivateKey: {_b64(scalar)}")
    else:
        data = raw.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        lines.append(f"PrivateKey: {_b64(data)}")
    lines += [f"Created: {created}", f"Publish: {created}", f"Activate: {created}"]
    return "\n".join(lines) + "\n"


def parse_private_key(text: str, where: str) -> tuple[int, GenericPrivateKey]:
    """Read a BIND ``.private`` file; errors name the file, never the key."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip()] = value.strip()
    try:
        algorithm = int(fields["Algorithm"].split()[0])
        if algorithm in _RSA:
            n, e, d, p, q, dmp1, dmq1, iqmp = (
                int.from_bytes(_unb64(fields[f]), "big") for f in _RSA_FIELDS
            )
            numbers = rsa.RSAPrivateNumbers(
                p, q, d, dmp1, dmq1, iqmp, rsa.RSAPublicNumbers(e, n)
            )
            # We wrote these files ourselves; OpenSSL's full key check costs
            # tens of milliseconds per key and dozens of keys load at start.
            raw: Any = numbers.private_key(unsafe_skip_rsa_key_validation=True)
        elif algorithm in _EC_CURVES:
            curve = _EC_CURVES[algorithm][0]()
            scalar = int.from_bytes(_unb64(fields["PrivateKey"]), "big")
            raw = ec.derive_private_key(scalar, curve)
        elif algorithm == 15:
            raw = ed25519.Ed25519PrivateKey.from_private_bytes(
                _unb64(fields["PrivateKey"])
            )
        elif algorithm == 16:
            raw = ed448.Ed448PrivateKey.from_private_bytes(_unb64(fields["PrivateKey"]))
        else:
            raise KeyStoreError(f"{where}: unsupported algorithm {algorithm}")
    except KeyStoreError:
        raise
    except (KeyError, ValueError, IndexError) as exc:
        # The message names the missing or broken field only, never its value.
        raise KeyStoreError(
            f"{where}: not a BIND private key file ({type(exc).__name__}: "
            f"{exc if isinstance(exc, KeyError) else 'bad value'})"
        ) from None
    return algorithm, get_algorithm_cls(algorithm)(key=raw)


def key_file_text(zone: str, dnskey: DNSKEY, created: str) -> str:
    kind = "key-signing" if dnskey.flags & SEP_FLAG else "zone-signing"
    tag = dns.dnssec.key_id(dnskey)
    return (
        f"; This is a {kind} key, keyid {tag}, for {zone}\n"
        f"; Created: {created}\n; Publish: {created}\n; Activate: {created}\n"
        f"{zone} IN DNSKEY {dnskey.to_text()}\n"
    )


def stem_for(zone: str, algorithm: int, tag: int) -> str:
    return f"K{zone}+{algorithm:03d}+{tag:05d}"


class KeyStore:
    """The keys of one state directory (``<state_dir>/keys``)."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = Path(state_dir) / "keys"
        self._index_path = self.directory / "slots.json"
        self._loaded: dict[tuple[str, str, int, bool], ZoneKey] = {}

    # -- locking and checks -------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's lock: two servers must not create the same slot."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise KeyStoreError(
                f"{self.directory}: cannot create the key directory: "
                f"{exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def check_permissions(self) -> None:
        """Refuse private key files that the group or others can access."""
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("*.private")):
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise KeyStoreError(
                    f"{path}: private key file has mode {mode:04o}; it must not be "
                    f"readable or writable by group or others (chmod 600 {path})"
                )

    # -- the slot index -----------------------------------------------------

    def _read_index(self) -> list[dict[str, Any]]:
        if not self._index_path.exists():
            return []
        try:
            data = json.loads(self._index_path.read_text(encoding="utf-8"))
            entries = data["keys"]
            if not isinstance(entries, list):
                raise TypeError("keys is not a list")
            return entries
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(
                f"{self._index_path}: unreadable slot index: {exc}"
            ) from None

    def _write_index(self, entries: list[dict[str, Any]]) -> None:
        tmp = self._index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"keys": entries}, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self._index_path)

    # -- keys ---------------------------------------------------------------

    def key(
        self, zone: str, slot: str, algorithm: int, sep: bool, rsa_bits: int = 2048
    ) -> ZoneKey:
        """The key in a slot, created on first use. Call inside :meth:`locked`."""
        ident = (zone, slot, algorithm, sep)
        if ident in self._loaded:
            return self._loaded[ident]
        entries = self._read_index()
        for entry in entries:
            if (
                entry["zone"],
                entry["slot"],
                entry["algorithm"],
                entry["sep"],
            ) == ident:
                key = self._load(zone, slot, entry["file"])
                break
        else:
            taken = self._zone_tags(zone, entries)
            key = self._generate(zone, slot, algorithm, sep, rsa_bits, taken)
            entries = [
                e
                for e in entries
                if (e["zone"], e["slot"], e["algorithm"], e["sep"]) != ident
            ]
            entries.append(
                {
                    "zone": zone,
                    "slot": slot,
                    "algorithm": algorithm,
                    "sep": sep,
                    "file": key.stem,
                    "tag": key.tag,
                }
            )
            self._write_index(entries)
            log.info("created key %s (%s slot %r)", key.stem, zone, slot)
        self._loaded[ident] = key
        return key

    def _zone_tags(self, zone: str, entries: list[dict[str, Any]]) -> set[int]:
        """Tags in use in a zone, revoked forms included (RFC 5011 §7: +128)."""
        taken: set[int] = set()
        for entry in entries:
            if entry["zone"] == zone:
                key = self._load(zone, entry["slot"], entry["file"])
                taken.update((key.tag, key.revoked_tag()))
        return taken

    def _generate(
        self,
        zone: str,
        slot: str,
        algorithm: int,
        sep: bool,
        rsa_bits: int,
        taken: set[int],
    ) -> ZoneKey:
        cls: Any = get_algorithm_cls(algorithm)
        flags = ZONE_FLAG | (SEP_FLAG if sep else 0)
        # Key tags are not unique (RFC 4034 App. B); a clash inside one zone
        # would make validators try the wrong key, so draw again.
        for _ in range(100):
            private = cls.generate(rsa_bits) if algorithm in _RSA else cls.generate()
            dnskey = private.public_key().to_dnskey(flags=flags)
            revoked = dnskey.replace(flags=flags | REVOKE_FLAG)
            tags = {dns.dnssec.key_id(dnskey), dns.dnssec.key_id(revoked)}
            if not tags & taken:
                break
        else:  # pragma: no cover - 100 clashes in a row cannot happen
            raise KeyStoreError(f"{zone}: cannot draw a key with an unused tag")
        created = time.strftime("%Y%m%d%H%M%S", time.gmtime())
        stem = stem_for(zone, algorithm, dns.dnssec.key_id(dnskey))
        private_path = self.directory / f"{stem}.private"
        tmp = private_path.with_suffix(".private.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(private_key_text(private, algorithm, created))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, private_path)
        (self.directory / f"{stem}.key").write_text(
            key_file_text(zone, dnskey, created), encoding="ascii"
        )
        return ZoneKey(zone, slot, algorithm, dnskey, stem, private)

    def _load(self, zone: str, slot: str, stem: str) -> ZoneKey:
        key_path = self.directory / f"{stem}.key"
        private_path = self.directory / f"{stem}.private"
        try:
            key_text = key_path.read_text(encoding="ascii")
            mode = stat.S_IMODE(private_path.stat().st_mode)
            if mode & 0o077:
                raise KeyStoreError(
                    f"{private_path}: private key file has mode {mode:04o}; it must "
                    f"not be readable or writable by group or others "
                    f"(chmod 600 {private_path})"
                )
            private_text = private_path.read_text(encoding="ascii")
        except OSError as exc:
            raise KeyStoreError(
                f"{exc.filename}: cannot read key file: {exc.strerror or exc}"
            ) from None
        dnskey = _parse_key_file(key_text, str(key_path))
        algorithm, private = parse_private_key(private_text, str(private_path))
        if algorithm != dnskey.algorithm:
            raise KeyStoreError(f"{private_path}: algorithm differs from {key_path}")
        public = private.public_key().to_dnskey(flags=dnskey.flags)
        if public.key != dnskey.key:
            raise KeyStoreError(f"{private_path}: does not match {key_path}")
        return ZoneKey(zone, slot, algorithm, dnskey, stem, private)


def _parse_key_file(text: str, where: str) -> DNSKEY:
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        try:
            index = [f.upper() for f in fields].index("DNSKEY")
            rdata = dns.rdata.from_text(
                dns.rdataclass.IN, dns.rdatatype.DNSKEY, " ".join(fields[index + 1 :])
            )
        except (ValueError, dns.exception.DNSException) as exc:
            raise KeyStoreError(f"{where}: not a DNSKEY line: {exc}") from None
        assert isinstance(rdata, DNSKEY)
        return rdata
    raise KeyStoreError(f"{where}: no DNSKEY record in the file")
