from __future__ import annotations

import pytest

from rootcanary import names
from rootcanary.names import NameRole, role_of

Z = "canary.test."


def test_sentinel_label_is_five_decimal_digits() -> None:
    assert names.sentinel_label("is-ta", 42) == "root-key-sentinel-is-ta-00042"
    assert names.sentinel_name(Z, "not-ta", 38696, "ab12") == (
        "root-key-sentinel-not-ta-38696.ab12.sentinel.canary.test."
    )


@pytest.mark.parametrize(
    ("qname", "role"),
    [
        ("valid.canary.test.", NameRole("valid")),
        ("x1.VALID.Canary.Test", NameRole("valid", "x1")),
        ("15112.1400665523.valid.canary.test.", NameRole("valid", "15112.1400665523")),
        ("bogus-expired.canary.test.", NameRole("bogus-expired")),
        (
            "root-key-sentinel-is-ta-20326.n1.sentinel.canary.test.",
            NameRole("is-ta:20326", "n1"),
        ),
        ("root-key-sentinel-not-ta-00042.sentinel.canary.test.", NameRole("not-ta:42")),
        (
            "9.1.root-key-sentinel-is-ta-20326.sentinel.canary.test.",
            NameRole("sentinel-shadowed", "9.1.root-key-sentinel-is-ta-20326"),
        ),
        ("abc.whoami.canary.test.", NameRole("whoami", "abc")),
        ("big.canary.test.", NameRole("big")),
        ("q.valid.d2a13n3.canary.test.", NameRole("alg:d2a13n3:valid", "q")),
        ("bogus-sig.d1a8n1.canary.test.", NameRole("alg:d1a8n1:bogus-sig")),
    ],
)
def test_role_of(qname: str, role: NameRole) -> None:
    assert role_of(qname, Z) == role


@pytest.mark.parametrize(
    "qname",
    [
        "canary.test.",
        "valid.other.test.",
        "bogus-bad.canary.test.",
        "whoami.canary.test.",
        "root-key-sentinel-is-ta-2032.sentinel.canary.test.",
    ],
)
def test_role_of_foreign_names(qname: str) -> None:
    assert role_of(qname, Z) is None


def test_root_dnskey_role() -> None:
    assert role_of(".", Z, "DNSKEY") == NameRole("dnskey")
    assert role_of(".", Z, "A") is None


def test_check_role() -> None:
    for good in ("valid", "bogus-ds", "is-ta:38696", "alg:d2a13n1:valid", "dnskey"):
        assert names.check_role(good) == good
    for bad in ("bogus", "is-ta:99999", "alg:x:valid", "sentinel"):
        with pytest.raises(ValueError):
            names.check_role(bad)
