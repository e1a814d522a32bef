"""Observations of typical resolvers, for the classifier tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rootcanary.observation import Observation

T0 = datetime(2026, 10, 11, 0, 0, tzinfo=UTC)
Z = "canary.test."


def obs(
    probe: str,
    role: str | None,
    rcode: str | None,
    *,
    hour: float = 0,
    ad: bool = False,
    ede: tuple[int, ...] = (),
    answers: tuple[str, ...] = (),
    resolver: str = "127.0.1.1",
    measurement: str | int | None = None,
    qname: str = "x.example.",
) -> Observation:
    return Observation(
        platform="local",
        measurement=measurement if measurement is not None else (role or "m"),
        probe=probe,
        resolver=resolver,
        af=4,
        time=T0 + timedelta(hours=hour),
        qname=qname,
        qtype="A",
        rcode=rcode,
        ad=None if rcode is None else ad,
        answers=answers,
        ede=ede,
        error="timeout" if rcode is None else None,
        role=role,
    )


def round_of(probe: str, kind: str, hour: float = 0) -> list[Observation]:
    """One probing round of a resolver of the given kind."""
    y, s = "NOERROR", "SERVFAIL"
    validating = kind != "nonv"
    table = {
        "ksk2024": {
            "is-ta:38696": y,
            "not-ta:38696": s,
            "is-ta:20326": s,
            "not-ta:20326": y,
        },
        "ksk2017": {
            "is-ta:38696": s,
            "not-ta:38696": y,
            "is-ta:20326": y,
            "not-ta:20326": s,
        },
        "vind": {
            "is-ta:38696": y,
            "not-ta:38696": y,
            "is-ta:20326": y,
            "not-ta:20326": y,
        },
        "nonv": {
            "is-ta:38696": y,
            "not-ta:38696": y,
            "is-ta:20326": y,
            "not-ta:20326": y,
        },
    }
    if kind == "broken":
        return [
            obs(probe, role, s, hour=hour, ede=(9,))
            for role in ("valid", "bogus-sig", "is-ta:38696", "not-ta:38696")
        ]
    rows = [
        obs(probe, "valid", y, hour=hour, ad=validating),
        obs(
            probe,
            "bogus-sig",
            s if validating else y,
            hour=hour,
            ede=(6,) if validating else (),
        ),
    ]
    rows += [
        obs(probe, role, rc, hour=hour, ad=validating and rc == y)
        for role, rc in table[kind].items()
    ]
    return rows
