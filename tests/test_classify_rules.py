"""The classification rules: RFC 8509 §3, the valid/bogus pair, algorithms."""

from __future__ import annotations

import itertools

import pytest

from rootcanary.classify import rules
from rootcanary.classify.model import RoleEvidence


def _ev(role: str, **counts: int) -> RoleEvidence:
    base = dict(noerror=0, servfail=0, other=0, failed=0, ad=0)
    base.update(counts)
    return RoleEvidence(role=role, ede=(), rcodes=(), **base)  # type: ignore[arg-type]


# RFC 8509 §3: Y = RRset returned, S = SERVFAIL; (is-ta, not-ta, bogus).
RFC8509 = {"YSS": "Vnew", "SYS": "Vold", "YYS": "Vind", "YYY": "nonV"}


@pytest.mark.parametrize(
    "pattern", ["".join(p) for p in itertools.product("YSXM", repeat=3)]
)
def test_sentinel_table_is_rfc8509_section3(pattern: str) -> None:
    state = rules.trust_anchor_state(38696, *pattern)
    assert state.pattern == pattern
    assert state.state == RFC8509.get(pattern, "other")


@pytest.mark.parametrize("pattern", ["-SS", "Y-S", "YS-", "---"])
def test_sentinel_state_needs_all_three_answers(pattern: str) -> None:
    assert rules.trust_anchor_state(20326, *pattern).state is None


@pytest.mark.parametrize(
    ("valid", "bogus", "state"),
    [
        ("Y", "S", "secure"),
        ("Y", "Y", "insecure"),
        ("S", "S", "bogus"),
        ("S", "Y", "bogus"),
        ("X", "-", "bogus"),  # REFUSED or NXDOMAIN for the valid name
        ("Y", "-", "unknown"),
        ("Y", "X", "unknown"),
        ("-", "S", "unknown"),
        ("M", "S", "secure"),  # an answer among failures still resolves
    ],
)
def test_validation_state(valid: str, bogus: str, state: str) -> None:
    assert rules.validation_state(valid, bogus) == state


def test_any_bogus_servfail_is_the_validation_evidence() -> None:
    assert (
        rules.combine([_ev("bogus-sig", servfail=1), _ev("bogus-ds", noerror=1)]) == "S"
    )
    assert rules.combine([_ev("bogus-sig", noerror=2), _ev("bogus-ds", other=1)]) == "Y"
    assert rules.combine([_ev("bogus-sig", failed=3)]) == "-"
    assert rules.combine([]) == "-"


@pytest.mark.parametrize(
    ("valid", "bogus", "state"),
    [("Y", "S", "can"), ("Y", "Y", "cannot"), ("S", "S", "broken"), ("-", "S", None)],
)
def test_algorithm_support(valid: str, bogus: str, state: str | None) -> None:
    assert rules.algorithm_support("d2a15n1", valid, bogus).state == state


def test_flags() -> None:
    roles = {
        "valid": RoleEvidence("valid", 0, 2, 0, 0, 0, (9,), ("SERVFAIL",)),
        "bogus-sig": RoleEvidence("bogus-sig", 1, 0, 0, 0, 1, (), ("NOERROR",)),
        "big": RoleEvidence("big", 0, 0, 0, 2, 0, (), ()),
    }
    assert rules.flags(roles, "bogus") == (
        "ad-on-bogus",
        "big-failed",
        "valid-servfail-ede",
    )
    secure = {
        "valid": _ev("valid", noerror=1, ad=1),
        "bogus-sig": _ev("bogus-sig", servfail=1),
        "bogus-expired": _ev("bogus-expired", noerror=1),
        "is-ta:38696": _ev("is-ta:38696", noerror=1, servfail=1),
        "sentinel-shadowed": _ev("sentinel-shadowed", noerror=1),
    }
    assert rules.flags(secure, "secure") == (
        "accepts-bogus:expired",
        "inconsistent:is-ta:38696",
        "sentinel-shadowed",
    )


def test_anchor_set_reads_vnew_and_vold() -> None:
    states = [
        rules.trust_anchor_state(20326, "S", "Y", "S"),
        rules.trust_anchor_state(38696, "Y", "S", "S"),
        rules.trust_anchor_state(19036, "Y", "Y", "S"),
    ]
    found = rules.anchor_set(states, (19036, 20326, 38696))
    assert (found.holds, found.lacks, found.undetermined) == (
        (38696,),
        (20326,),
        (19036,),
    )
    assert found.describe() == "holds 38696; not 20326"
