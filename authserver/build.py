"""From a scenario to signed zones: keys, content, signatures, sizes.

:class:`ZoneBuilder` loads (or creates) every key once and can then sign the
hierarchy for any signing epoch; the server calls it again before the
signatures of the current epoch come within ``signature_refresh`` of expiry.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.rrset
import platformdirs

from authserver import content as zc
from authserver.keys import KeyStore, ZoneKey
from authserver.render import render
from authserver.sign import SigTimes, ZoneSigner, link, sign_zone
from authserver.zone import Served, Zone, label_offsets, resolve
from rootcanary.errors import ServerError
from rootcanary.scenario import Scenario
from rootcanary.scenario.zones import KeySpec

log = logging.getLogger("authserver.build")

EPOCH_STEP = 3600  # signing epochs start on the hour, so workers agree on them


def default_state_dir(scenario: Scenario) -> Path:
    """``$XDG_STATE_HOME/rootcanary/authserver/<scenario name>``."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", scenario.name) or "scenario"
    return platformdirs.user_state_path("rootcanary") / "authserver" / name


def state_dir_for(scenario: Scenario, override: Path | None = None) -> Path:
    return override or scenario.server.state_dir or default_state_dir(scenario)


@dataclass(frozen=True)
class Built:
    """One signing epoch of the whole hierarchy."""

    served: Served
    contents: tuple[zc.ZoneContent, ...]
    epoch: int
    #: When the next epoch must be signed (earliest refresh point of any zone).
    refresh_at: int

    def zone(self, apex: str) -> Zone:
        for zone in self.served.zones:
            if zone.text == apex:
                return zone
        raise KeyError(apex)


class ZoneBuilder:
    """Keys of a scenario's zones, and signing of the hierarchy per epoch."""

    def __init__(
        self,
        scenario: Scenario,
        state_dir: Path,
        listen: tuple[tuple[str, int], ...] | None = None,
    ) -> None:
        self.scenario = scenario
        self.state_dir = state_dir
        self.listen = zc.listen_addresses(listen or scenario.server.listen)
        self.planned = zc.plan_zones(scenario.zones)
        self.keys: dict[str, list[tuple[KeySpec, ZoneKey]]] = {}
        self.wrongkeys: dict[str, ZoneKey] = {}
        self._load_keys()

    def _load_keys(self) -> None:
        store = KeyStore(self.state_dir)
        with store.locked():
            store.check_permissions()
            for planned in self.planned:
                spec = planned.spec
                pairs = []
                for kspec in spec.keys:
                    alg = kspec.algorithm or spec.algorithm
                    key = store.key(
                        spec.apex, kspec.slot, alg, kspec.sep, spec.rsa_bits
                    )
                    pairs.append((kspec, key))
                self.keys[spec.apex] = pairs
                if spec.test_names:
                    # A key that never appears in the DNSKEY set (bogus-wrongkey).
                    self.wrongkeys[spec.apex] = store.key(
                        spec.apex,
                        zc.WRONGKEY_SLOT,
                        spec.algorithm,
                        False,
                        spec.rsa_bits,
                    )

    def epoch_for(self, now: float) -> int:
        return int(now) // EPOCH_STEP * EPOCH_STEP

    def build(self, epoch: int | None = None, dynamic: bool = True) -> Built:
        """Sign everything for ``epoch`` (default: the current hour)."""
        if epoch is None:
            epoch = self.epoch_for(time.time())
        started = time.monotonic()
        contents = zc.build_contents(
            self.planned,
            self.keys,
            self.wrongkeys,
            self.listen,
            serial=epoch,
            dynamic=dynamic,
        )
        zones = []
        refresh_at = None
        for content in contents:
            spec = content.spec
            times = SigTimes.at(epoch, spec.signature_validity, spec.inception_offset)
            zone = sign_zone(content, times)
            zones.append(zone)
            due = int(epoch + spec.signature_validity - spec.signature_refresh)
            refresh_at = due if refresh_at is None else min(refresh_at, due)
        parents = {p.spec.apex: p.parent for p in self.planned}
        served = link(zones, parents)
        for content, zone in zip(contents, zones, strict=True):
            if content.big:
                times = SigTimes.at(
                    epoch,
                    content.spec.signature_validity,
                    content.spec.inception_offset,
                )
                _fit_big(content, zone, served, ZoneSigner(content, times))
        log.debug(
            "signed %d zones for epoch %d in %.2fs",
            len(zones),
            epoch,
            time.monotonic() - started,
        )
        assert refresh_at is not None
        return Built(served, tuple(contents), epoch, refresh_at)


def _big_size(served: Served, owner: dns.name.Name, payload: int) -> int:
    lname = owner.canonicalize().to_wire() or b""
    res = resolve(served, lname, label_offsets(lname), dns.rdatatype.TXT, 4, True)
    return len(render(res, owner, dns.rdatatype.TXT, True, True, "", 4, payload).wire)


def _fit_big(
    content: zc.ZoneContent, zone: Zone, served: Served, signer: ZoneSigner
) -> None:
    """Pad the ``big`` TXT so that ``big.Z TXT`` with DO and EDNS is exactly
    ``big_size`` octets (the wildcard names below add their own proof)."""
    target = content.spec.big_size
    owner = content.big[0]
    measured = _big_size(served, owner, 1232)
    current = len(content.rrsets[(owner, dns.rdatatype.TXT)][0].to_digestable())
    wanted = current + target - measured
    if wanted < 1:
        raise ServerError(
            f"{content.spec.apex}: big_size {target} is below the smallest possible "
            f"answer ({measured - current + 1} octets)"
        )
    for name in content.big:
        rrset = dns.rrset.from_text(
            name, content.spec.ttl, "IN", "TXT", zc.big_txt(wanted)
        )
        content.rrsets[(name, dns.rdatatype.TXT)] = rrset
        node = zone.nodes[name.canonicalize().to_wire() or b""]
        node.rrsets[dns.rdatatype.TXT] = signer.sign(rrset)
    final = _big_size(served, owner, 1232)
    if final != target:  # pragma: no cover - the size is linear in the RDATA
        raise ServerError(f"{owner}: sized answer is {final} octets, not {target}")
