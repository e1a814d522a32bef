"""Which role each response plays: the four sources, in contract order.

1. the observation's own ``role`` field (backends that know it set it);
2. the campaign manifest's roles by measurement (``{"12345": "valid"}``);
3. ``--role NAME=MEASUREMENT`` given on the command line;
4. the query name, mapped back through :func:`rootcanary.names.role_of`
   under the test zone (prefixes from ``prepend_probe_id`` and macros are
   ignored there).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rootcanary import names
from rootcanary.errors import ConfigError

SHADOWED = "sentinel-shadowed"

# Address-looking tokens in whoami answers (A, AAAA rdata or TXT text).
_ADDRESS = re.compile(r"[0-9A-Fa-f:.]*[:.][0-9A-Fa-f:.]+")


def parse_role_options(options: Iterable[str]) -> dict[str, str]:
    """``["valid=1234", "is-ta:38696=1236"]`` as ``{"1234": "valid", ...}``."""
    out: dict[str, str] = {}
    for option in options:
        role, sep, measurement = option.rpartition("=")
        if not sep or not role or not measurement:
            raise ConfigError(
                f"--role {option!r}: write NAME=MEASUREMENT, e.g. valid=12345"
            )
        try:
            names.check_role(role)
        except ValueError as exc:
            raise ConfigError(f"--role {option!r}: {exc}") from None
        known = out.setdefault(measurement.strip(), role)
        if known != role:
            raise ConfigError(
                f"--role: measurement {measurement} given as {known!r} and {role!r}"
            )
    return out


@dataclass(frozen=True)
class RoleMap:
    """Resolves roles; ``manifest`` wins over ``options`` for a measurement."""

    manifest: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    zone: str | None = None

    def by_measurement(self, measurement: str | int) -> str | None:
        key = str(measurement)
        return self.manifest.get(key) or self.options.get(key)

    def by_name(self, qname: str, qtype: str) -> str | None:
        if not qname:
            return None
        if self.zone is None and not (qtype.upper() == "DNSKEY" and qname == "."):
            return None
        found = names.role_of(qname, self.zone or ".", qtype or "A")
        return found.role if found else None

    def role(
        self, own: str | None, measurement: str | int, qname: str, qtype: str
    ) -> str | None:
        return own or self.by_measurement(measurement) or self.by_name(qname, qtype)


def upstream_addresses(answers: Iterable[str]) -> set[str]:
    """Resolver addresses in whoami answers, as canonical text.

    Answers are master-file lines (``owner TTL IN A 192.0.2.1``) or bare
    rdata; A and AAAA give their address, TXT any address in its text.
    """
    found: set[str] = set()
    for answer in answers:
        fields = answer.split(None, 4)
        if len(fields) == 5 and fields[3].upper() in ("A", "AAAA", "TXT"):
            text = fields[4]
        elif len(fields) == 5:
            continue  # an RRSIG or CNAME next to the whoami answer
        else:
            text = answer
        for token in _ADDRESS.findall(text):
            try:
                found.add(str(ipaddress.ip_address(token.strip("."))))
            except ValueError:
                continue
    return found


def role_map_for(
    manifest_roles: Mapping[str, str],
    manifest_zone: str | None,
    role_options: Iterable[str] = (),
    zone: str | None = None,
    scenario_zone: str | None = None,
) -> RoleMap:
    """The RoleMap of a command: manifest roles, then ``--role`` options.

    The zone is ``--zone`` when given, else the manifest's, else the
    scenario's ``[tests].zone``.
    """
    chosen = zone or manifest_zone or scenario_zone
    return RoleMap(
        manifest=dict(manifest_roles),
        options=parse_role_options(role_options),
        zone=names.absolute(chosen) if chosen else None,
    )
