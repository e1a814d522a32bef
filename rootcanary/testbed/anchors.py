"""Root trust anchors in the formats each resolver reads.

An :class:`Anchor` is the root KSK as DNSKEY and DS RDATA (presentation form);
the functions here render it for Unbound, BIND, Knot Resolver and PowerDNS
Recursor. :func:`stale_anchor` makes a KSK that the root does not use, for the
``stale`` variant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dns.dnssec
import dns.dnssectypes
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from dns.rdtypes.ANY.DNSKEY import DNSKEY


@dataclass(frozen=True)
class Anchor:
    """A root trust anchor: DNSKEY RDATA lines and the matching DS RDATA lines."""

    dnskeys: tuple[str, ...]  # "257 3 13 <base64>"
    ds: tuple[str, ...]  # "<tag> <alg> <digest type> <hex>"

    @property
    def keytags(self) -> tuple[int, ...]:
        return tuple(dns.dnssec.key_id(_dnskey(text)) for text in self.dnskeys)


def _dnskey(text: str) -> DNSKEY:
    key = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DNSKEY, text)
    assert isinstance(key, DNSKEY)
    return key


def anchor_from_dnskeys(dnskeys: list[str] | tuple[str, ...]) -> Anchor:
    """Derive the SHA-256 DS lines (RFC 4509) from DNSKEY RDATA lines."""
    ds = []
    for text in dnskeys:
        ds.append(dns.dnssec.make_ds(".", _dnskey(text), "SHA256").to_text())
    return Anchor(tuple(dnskeys), tuple(ds))


def stale_anchor(directory: Path) -> Anchor:
    """A P-256 KSK kept in ``directory`` that the private root never publishes.

    A resolver holding only this key sees a root DNSKEY set that no trust anchor
    matches, which is what a resolver with an outdated anchor sees after a roll.
    """
    path = directory / "stale-ksk.pem"
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    else:
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.touch(mode=0o600)
        path.write_bytes(pem)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    dnskey = dns.dnssec.make_dnskey(
        key.public_key(), dns.dnssectypes.Algorithm.ECDSAP256SHA256, flags=257
    )
    return anchor_from_dnskeys([dnskey.to_text()])


def dnskey_zone_lines(anchor: Anchor, ttl: int = 3600) -> str:
    """``. 3600 IN DNSKEY ...`` lines: Unbound's root.key and kresd's keyfile."""
    return "".join(f". {ttl} IN DNSKEY {key}\n" for key in anchor.dnskeys)


def bind_trust_anchors(anchor: Anchor, managed: bool) -> str:
    """A ``trust-anchors`` block: initial-key (RFC 5011) or static-key."""
    kind = "initial-key" if managed else "static-key"
    lines = []
    for key in anchor.dnskeys:
        flags, protocol, algorithm, *material = key.split()
        lines.append(
            f'  . {kind} {flags} {protocol} {algorithm} "{"".join(material)}";'
        )
    return "trust-anchors {\n" + "\n".join(lines) + "\n};\n"


def pdns_lua(anchor: Anchor) -> str:
    """``clearTA()`` drops PowerDNS Recursor's built-in root DS before ours."""
    adds = "".join(f"addTA('.', \"{ds}\")\n" for ds in anchor.ds)
    return "clearTA('.')\n" + adds
