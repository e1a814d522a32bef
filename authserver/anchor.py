"""Trust anchors and DS records of a scenario's zones, for resolvers and parents.

``root_trust_anchor(scenario, state_dir)`` is what the testbed gives real
resolvers: the private root's KSK as DNSKEY and DS lines. Keys are created on
first use, so it works before the server ever ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dns.dnssec
import dns.name

from authserver.build import state_dir_for
from authserver.content import ds_rdatas, listen_addresses, ns_addresses, plan_zones
from authserver.keys import KeyStore, ZoneKey
from rootcanary.errors import ScenarioError
from rootcanary.scenario import Scenario
from rootcanary.scenario.zones import KeySpec, ZoneSpec


@dataclass(frozen=True)
class AnchorKey:
    """One trust-anchor key, in the forms resolver configurations take."""

    slot: str
    tag: int
    algorithm: int
    flags: int
    #: ``257 3 13 <base64>`` (BIND ``trust-anchors``, Knot ``trust_anchors.add``).
    rdata: str
    #: ``. IN DNSKEY 257 3 13 <base64>`` (Unbound ``trust-anchor-file``).
    dnskey: str
    #: ``. IN DS 12345 13 2 <HEX>`` per digest type (PowerDNS ``addTA``).
    ds: tuple[str, ...]


@dataclass(frozen=True)
class TrustAnchor:
    """The SEP keys of a zone that resolvers should trust."""

    zone: str
    keys: tuple[AnchorKey, ...]

    @property
    def dnskey_lines(self) -> tuple[str, ...]:
        return tuple(k.dnskey for k in self.keys)

    @property
    def ds_lines(self) -> tuple[str, ...]:
        return tuple(line for k in self.keys for line in k.ds)

    @property
    def key_tags(self) -> tuple[int, ...]:
        return tuple(k.tag for k in self.keys)


def root_trust_anchor(
    scenario: Scenario,
    state_dir: Path | None = None,
    slots: tuple[str, ...] | None = None,
) -> TrustAnchor:
    """The private root's trust anchor (the scenario must serve ``.``).

    Without ``slots``: the published, unrevoked SEP keys that sign the root
    DNSKEY set (the KSK of a fresh scenario). With ``slots`` (e.g.
    ``("ksk2",)`` before a rollover publishes it): those keys, created if
    absent, with the zone's algorithm unless the scenario's slot says else.
    """
    return zone_trust_anchor(scenario, ".", state_dir, slots)


def zone_trust_anchor(
    scenario: Scenario,
    apex: str,
    state_dir: Path | None = None,
    slots: tuple[str, ...] | None = None,
) -> TrustAnchor:
    """Like :func:`root_trust_anchor`, for any zone the scenario serves."""
    spec = _served(scenario, apex)
    if slots is None:
        chosen = [
            k
            for k in spec.keys
            if k.sep and k.publish and k.signs_dnskey and not k.revoke
        ]
    else:
        by_slot = {k.slot: k for k in spec.keys}
        chosen = [by_slot.get(slot, KeySpec(slot, sep=True)) for slot in slots]
    store = KeyStore(state_dir_for(scenario, state_dir))
    with store.locked():
        store.check_permissions()
        pairs = [
            (
                k,
                store.key(
                    spec.apex,
                    k.slot,
                    k.algorithm or spec.algorithm,
                    True,
                    spec.rsa_bits,
                ),
            )
            for k in chosen
        ]
    return TrustAnchor(spec.apex, tuple(_anchor_key(spec, k, key) for k, key in pairs))


def _anchor_key(spec: ZoneSpec, kspec: KeySpec, key: ZoneKey) -> AnchorKey:
    dnskey = key.published(kspec.revoke)
    origin = dns.name.from_text(spec.apex)
    ds = ds_rdatas(origin, [(KeySpec(kspec.slot, sep=True), key)], spec.ds_digests)
    return AnchorKey(
        slot=kspec.slot,
        tag=dns.dnssec.key_id(dnskey),
        algorithm=int(dnskey.algorithm),
        flags=dnskey.flags,
        rdata=dnskey.to_text(chunksize=0),
        dnskey=f"{spec.apex} IN DNSKEY {dnskey.to_text(chunksize=0)}",
        ds=tuple(f"{spec.apex} IN DS {d.to_text().upper()}" for d in ds),
    )


def root_hints(
    scenario: Scenario, listen: tuple[tuple[str, int], ...] | None = None
) -> str:
    """A root hints file for resolvers: the root zone's NS names and addresses.

    Name servers without addresses get the listen addresses (``listen``, else
    the scenario's), exactly as the server puts them in the root zone.
    """
    spec = _served(scenario, ".")
    default = listen_addresses(listen or scenario.server.listen)
    lines = []
    for ns in spec.nameservers:
        lines.append(f". 3600000 IN NS {ns.name}")
    for ns in spec.nameservers:
        for address in ns_addresses(ns, default):
            kind = "AAAA" if ":" in address else "A"
            lines.append(f"{ns.name} 3600000 IN {kind} {address}")
    return "\n".join(lines) + "\n"


def ds_records(
    scenario: Scenario, state_dir: Path | None = None, every_zone: bool = False
) -> list[tuple[str, tuple[str, ...]]]:
    """(apex, DS lines) of the zones whose parent is not served here (or all).

    For "." these are the trust anchor in DS form.
    """
    planned = plan_zones(scenario.zones)
    store = KeyStore(state_dir_for(scenario, state_dir))
    out = []
    with store.locked():
        store.check_permissions()
        for p in planned:
            if p.parent is not None and not every_zone:
                continue
            spec = p.spec
            pairs = [
                (
                    k,
                    store.key(
                        spec.apex,
                        k.slot,
                        k.algorithm or spec.algorithm,
                        k.sep,
                        spec.rsa_bits,
                    ),
                )
                for k in spec.keys
            ]
            ds = ds_rdatas(dns.name.from_text(spec.apex), pairs, spec.ds_digests)
            out.append(
                (
                    spec.apex,
                    tuple(f"{spec.apex} IN DS {d.to_text().upper()}" for d in ds),
                )
            )
    return out


def _served(scenario: Scenario, apex: str) -> ZoneSpec:
    wanted = dns.name.from_text(apex)
    for p in plan_zones(scenario.zones):
        if dns.name.from_text(p.spec.apex) == wanted:
            return p.spec
    where = scenario.path or "<scenario>"
    raise ScenarioError(f"{where}: the scenario does not serve the zone {apex}")
