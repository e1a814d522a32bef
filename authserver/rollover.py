"""The root's keys in each phase of a KSK rollover (RFC 5011 §2, §6).

Pure functions: the scenario's ``[rollover]`` timeline and the phase name in,
the root's key slots with what each does (published, revoked, signing the
DNSKEY set) out. The phases follow the 2017-2019 root sequence:

========  ===========================  ======================================
start     DNSKEY {old}                 signed by old
publish   DNSKEY {old, new}            signed by old: new enters AddPend
roll      DNSKEY {old, new}            signed by new only (the roll)
revoke    DNSKEY {old+REVOKE, new}     signed by new and by the revoked old
remove    DNSKEY {new}                 signed by new
========  ===========================  ======================================

The REVOKE bit counts only with a signature by the revoked key itself over
the set that holds it (RFC 5011 §2.1), hence old signs in ``revoke``.
"""

from __future__ import annotations

from dataclasses import replace

from rootcanary.scenario.rollover import RolloverSpec
from rootcanary.scenario.zones import KeySpec

#: (published, revoked, signs the DNSKEY set) of (old, new) per phase.
_PHASES: dict[str, tuple[tuple[bool, bool, bool], tuple[bool, bool, bool]]] = {
    "start": ((True, False, True), (False, False, False)),
    "publish": ((True, False, True), (True, False, False)),
    "roll": ((True, False, False), (True, False, True)),
    "revoke": ((True, True, True), (True, False, True)),
    "remove": ((False, False, False), (True, False, True)),
}


def root_key_specs(
    keys: tuple[KeySpec, ...], rollover: RolloverSpec, phase: str
) -> tuple[KeySpec, ...]:
    """The root's key slots for ``phase``: the two KSKs set per the table above,
    the zone-signing slots as the scenario gives them. Other SEP slots (the
    default ``ksk`` when the rollover names its own) are left out: during a
    replay the timeline alone decides which KSKs the root has."""
    old_state, new_state = _PHASES[phase]
    by_slot = {k.slot: k for k in keys}
    out = [k for k in keys if not k.sep and k.slot not in (rollover.old, rollover.new)]
    for slot, (publish, revoke, signs) in (
        (rollover.old, old_state),
        (rollover.new, new_state),
    ):
        base = by_slot.get(slot, KeySpec(slot, sep=True))
        out.append(
            replace(
                base,
                sep=True,
                publish=publish,
                revoke=revoke,
                signs_dnskey=signs,
                signs_zone=base.signs_zone and publish,
            )
        )
    return tuple(out)
