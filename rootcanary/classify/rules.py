"""The classification rules, as pure functions over counted evidence.

Outcomes of one role in one bucket are single letters (see
:attr:`RoleEvidence.outcome`): ``Y`` an answer (NOERROR), ``S`` SERVFAIL, ``X``
another rcode, ``M`` a mix, ``-`` nothing usable. Failed attempts (timeouts,
socket errors) never count as an outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rootcanary import names
from rootcanary.classify.model import (
    AlgorithmSupport,
    AnchorSet,
    RoleEvidence,
    TrustAnchorState,
)

# RFC 8914 §4: EDE codes that name a cause other than DNSSEC validation. A
# SERVFAIL carrying only these is not evidence that the resolver validates.
NON_VALIDATION_EDE = frozenset(
    {3, 4, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 26, 29, 30, 31, 32}
)
# EDE 6 DNSSEC Bogus, 9 DNSKEY Missing, 10 RRSIGs Missing: a validator that
# gives these for our valid name has a broken chain to it (wrong anchor,
# stale DS, clock), which is what a failed rollover looks like.
BOGUS_VALID_EDE = frozenset({6, 9, 10})

#: Stable flag codes and what they mean (README, "flags").
FLAGS: dict[str, str] = {
    "ad-on-bogus": "AD set on an answer for a bogus name (RFC 4035 §3.2.3)",
    "valid-servfail-ede": "SERVFAIL with EDE 6, 9 or 10 for the valid name",
    "accepts-bogus:<kind>": "validates, yet answered bogus-<kind>",
    "inconsistent:<role>": "answers and failures for one name in one bucket",
    "sentinel-shadowed": "sentinel label not leftmost (RFC 8509 §2.1): unusable",
    "big-failed": "no answer for the large response (fragments, TCP fallback)",
    "dnskey-failed": "no answer for the root DNSKEY set",
}

# RFC 8509 §3, the single-resolver test: outcomes of (is-ta, not-ta, bogus).
_SENTINEL_TABLE: dict[str, str] = {
    "YSS": "Vnew",
    "SYS": "Vold",
    "YYS": "Vind",
    "YYY": "nonV",
}


def combine(evidence: Iterable[RoleEvidence]) -> str:
    """One outcome for several roles of a kind (all bogus names, say).

    A SERVFAIL for any of them is the evidence of validation that counts;
    without one, any answer; without one, any other rcode.
    """
    servfail = noerror = other = 0
    for ev in evidence:
        servfail += ev.servfail
        noerror += ev.noerror
        other += ev.other
    if servfail:
        return "S"
    if noerror:
        return "Y"
    return "X" if other else "-"


def answered(outcome: str) -> str:
    """Valid-name outcome: an answer among failures still resolves it."""
    return "Y" if outcome == "M" else outcome


def validation_state(valid: str, bogus: str) -> str:
    """From the valid and bogus outcomes to secure/insecure/bogus/unknown.

    NOERROR for valid and SERVFAIL for bogus is secure; NOERROR for both is
    insecure; anything else for valid is bogus (the valid name failed); no
    usable response for either is unknown.
    """
    valid = answered(valid)
    if valid == "-":
        return "unknown"
    if valid != "Y":
        return "bogus"
    if bogus == "S":
        return "secure"
    if bogus == "Y":
        return "insecure"
    return "unknown"


def trust_anchor_state(
    keytag: int, is_ta: str, not_ta: str, bogus: str
) -> TrustAnchorState:
    """Vnew/Vold/Vind/nonV/other; None while one of the three is missing.

    Only Y (original answer) and S (SERVFAIL) are RFC 8509 outcomes; any
    other rcode or a mix is "other", as is any pattern outside the table.
    """
    pattern = is_ta + not_ta + bogus
    if "-" in pattern:
        return TrustAnchorState(keytag, None, pattern)
    return TrustAnchorState(keytag, _SENTINEL_TABLE.get(pattern, "other"), pattern)


def anchor_set(states: Iterable[TrustAnchorState], keytags: Iterable[int]) -> AnchorSet:
    by_tag = {state.keytag: state.state for state in states}
    holds = tuple(t for t in keytags if by_tag.get(t) == "Vnew")
    lacks = tuple(t for t in keytags if by_tag.get(t) == "Vold")
    rest = tuple(t for t in keytags if t not in holds and t not in lacks)
    return AnchorSet(holds, lacks, rest)


def algorithm_support(zone: str, valid: str, bogus: str) -> AlgorithmSupport:
    """can: valid secure, bogus fails; cannot: treated as insecure (RFC 4035
    §5.2: an unsupported algorithm makes the zone insecure); broken: the valid
    name fails."""
    valid = answered(valid)
    if valid == "-":
        return AlgorithmSupport(zone, None)
    if valid != "Y":
        return AlgorithmSupport(zone, "broken")
    if bogus == "S":
        return AlgorithmSupport(zone, "can")
    if bogus == "Y":
        return AlgorithmSupport(zone, "cannot")
    return AlgorithmSupport(zone, None)


def flags(roles: Mapping[str, RoleEvidence], validation: str) -> tuple[str, ...]:
    """The flags of one bucket (see :data:`FLAGS`), sorted."""
    out: set[str] = set()
    valid = roles.get("valid")
    bogus = [ev for role, ev in roles.items() if names.is_bogus_role(role)]
    if any(ev.ad for ev in bogus):
        out.add("ad-on-bogus")
    if valid is not None and valid.servfail and BOGUS_VALID_EDE & set(valid.ede):
        out.add("valid-servfail-ede")
    if validation == "secure":
        out.update(f"accepts-bogus:{ev.role[6:]}" for ev in bogus if ev.noerror)
    for role, ev in roles.items():
        if ev.outcome == "M" and role not in ("big", "dnskey"):
            out.add(f"inconsistent:{role}")
    if "sentinel-shadowed" in roles:
        out.add("sentinel-shadowed")
    for role in ("big", "dnskey"):
        got = roles.get(role)
        if got is not None and not got.noerror and (got.responded or got.failed):
            out.add(f"{role}-failed")
    return tuple(sorted(out))
