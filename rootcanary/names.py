"""The test-name layout under a test zone Z: the names users put in measurements.

These names are a public contract (SPEC, "Test names"): the server answers them,
the schedulers build probes from them and the classifier maps a query name back
to the role it plays. All three use this module, so they cannot drift apart.

Roles are short strings, stable across the project and in manifests:

==========================  =================================================
``valid``                   ``valid.Z`` (and ``<label>.valid.Z``)
``bogus-sig`` etc.          ``bogus-<kind>.Z`` for each of :data:`BOGUS_KINDS`
``is-ta:38696``             ``root-key-sentinel-is-ta-38696.<label>.sentinel.Z``
``not-ta:38696``            ``root-key-sentinel-not-ta-38696.<label>.sentinel.Z``
``whoami``                  ``<label>.whoami.Z``
``big``                     ``big.Z``, a TXT answer of a chosen size
``dnskey``                  the root DNSKEY set (``. DNSKEY``)
``alg:d2a13n1:valid``       ``valid.d2a13n1.Z`` in the algorithm matrix
``alg:d2a13n1:bogus-sig``   ``bogus-sig.d2a13n1.Z``
==========================  =================================================
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

#: Failure kinds of the ``bogus-<kind>`` names, in SPEC order.
BOGUS_KINDS: tuple[str, ...] = ("sig", "expired", "future", "nosig", "wrongkey", "ds")

BOGUS_DESCRIPTIONS: dict[str, str] = {
    "sig": "bad signature",
    "expired": "expired signature",
    "future": "signature not yet valid",
    "nosig": "RRSIG missing",
    "wrongkey": "signed by a key absent from the DNSKEY set",
    "ds": "delegated child whose DS does not match its keys",
}

#: DNSKEY algorithms of the matrix (RFC 8624/9904 numbering), deprecated 5 and 7 too.
MATRIX_ALGORITHMS: tuple[int, ...] = (5, 7, 8, 10, 13, 14, 15, 16)
#: DS digest types of the matrix: SHA-1, SHA-256, SHA-384.
MATRIX_DIGESTS: tuple[int, ...] = (1, 2, 4)

SENTINEL_ZONE_LABEL = "sentinel"
WHOAMI_LABEL = "whoami"
BIG_LABEL = "big"
VALID_LABEL = "valid"

# RFC 8509 §2: the tag is exactly five decimal digits, zero-padded.
_SENTINEL = re.compile(r"^root-key-sentinel-(is|not)-ta-(\d{5})$")
_MATRIX = re.compile(r"^d(\d+)a(\d+)n([13])$")
_LABEL_OK = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def absolute(name: str) -> str:
    """Lower-case, absolute (trailing dot) form of a domain name."""
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def join(*parts: str) -> str:
    """Join labels and an absolute zone: ``join("valid", "canary.test.")``."""
    zone = parts[-1]
    labels = [p.strip(".") for p in parts[:-1] if p.strip(".")]
    if zone == ".":
        return ".".join(labels) + "." if labels else "."
    return ".".join([*labels, absolute(zone)]) if labels else absolute(zone)


def fresh_label(nbytes: int = 6) -> str:
    """A unique, cache-busting label: lower-case hex, DNS-safe."""
    return secrets.token_hex(nbytes)


def check_label(label: str) -> str:
    """Validate a user- or generator-supplied label (LDH, at most 63 octets)."""
    if not _LABEL_OK.match(label):
        raise ValueError(f"not a usable DNS label: {label!r}")
    return label


def bogus_role(kind: str) -> str:
    if kind not in BOGUS_KINDS:
        raise ValueError(
            f"unknown bogus kind {kind!r}; known: {', '.join(BOGUS_KINDS)}"
        )
    return f"bogus-{kind}"


def sentinel_label(kind: str, keytag: int) -> str:
    """``root-key-sentinel-is-ta-00042`` (RFC 8509 §2: five decimal digits)."""
    if kind not in ("is-ta", "not-ta"):
        raise ValueError(f"sentinel kind must be is-ta or not-ta, not {kind!r}")
    if not 0 <= keytag <= 65535:
        raise ValueError(f"key tag out of range: {keytag}")
    return f"root-key-sentinel-{kind}-{keytag:05d}"


def matrix_label(digest: int, algorithm: int, nsec: int) -> str:
    """``d2a13n1``: DS digest type 2, DNSKEY algorithm 13, NSEC (3 = NSEC3)."""
    if nsec not in (1, 3):
        raise ValueError("nsec must be 1 (NSEC) or 3 (NSEC3)")
    return f"d{digest}a{algorithm}n{nsec}"


def parse_matrix_label(label: str) -> tuple[int, int, int] | None:
    """(digest, algorithm, nsec) of a matrix zone label, or None."""
    match = _MATRIX.match(label)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def valid_name(zone: str, label: str | None = None) -> str:
    return join(*([label] if label else []), VALID_LABEL, zone)


def bogus_name(zone: str, kind: str, label: str | None = None) -> str:
    return join(*([label] if label else []), bogus_role(kind), zone)


def sentinel_name(zone: str, kind: str, keytag: int, label: str) -> str:
    """The sentinel label leftmost, the unique label right of it (RFC 8509 §3)."""
    return join(sentinel_label(kind, keytag), label, SENTINEL_ZONE_LABEL, zone)


def whoami_name(zone: str, label: str) -> str:
    return join(label, WHOAMI_LABEL, zone)


def big_name(zone: str, label: str | None = None) -> str:
    return join(*([label] if label else []), BIG_LABEL, zone)


def matrix_name(zone: str, matrix: str, leaf: str, label: str | None = None) -> str:
    """``<label>.valid.d2a13n1.Z`` or ``bogus-sig.d2a13n1.Z``."""
    return join(*([label] if label else []), leaf, matrix, zone)


@dataclass(frozen=True, slots=True)
class NameRole:
    """What a query name under Z is for; ``role`` is one of the strings above."""

    role: str
    label: str | None = None  # the unique label, where the name has one


def role_of(qname: str, zone: str, qtype: str = "A") -> NameRole | None:
    """Map a query name back to its role, or None when it is not one of ours.

    Prefixes added by RIPE Atlas (``prepend_probe_id``: ``<probe>.<time>.``) or
    by ``$r``/``$p`` macros sit left of the test name and are ignored, except
    for sentinel names, where RFC 8509 §2.1 requires the sentinel label to be
    the leftmost label of the query; a prefixed sentinel name is not a sentinel
    query and gets the role ``sentinel-shadowed``.
    """
    name = absolute(qname)
    if qtype.upper() == "DNSKEY" and name == ".":
        return NameRole("dnskey")
    zone = absolute(zone)
    if zone == ".":
        labels = name.rstrip(".").split(".") if name != "." else []
    elif name == zone or not name.endswith("." + zone):
        return None
    else:
        labels = name[: -len(zone) - 1].split(".")
    if not labels or labels == [""]:
        return None
    top = labels[-1]
    below = labels[:-1]
    unique = ".".join(below) or None
    if top == VALID_LABEL:
        return NameRole("valid", unique)
    if top.startswith("bogus-") and top[6:] in BOGUS_KINDS:
        return NameRole(top, unique)
    if top == BIG_LABEL:
        return NameRole("big", unique)
    if top == WHOAMI_LABEL and below:
        return NameRole("whoami", unique)
    if top == SENTINEL_ZONE_LABEL and below:
        match = _SENTINEL.match(below[0])
        if match:
            rest = ".".join(below[1:]) or None
            return NameRole(f"{match.group(1)}-ta:{int(match.group(2))}", rest)
        if any(_SENTINEL.match(label) for label in below):
            return NameRole("sentinel-shadowed", unique)
        return None
    matrix = parse_matrix_label(top)
    if matrix and below:
        leaf = below[-1]
        if leaf == VALID_LABEL or (
            leaf.startswith("bogus-") and leaf[6:] in BOGUS_KINDS
        ):
            return NameRole(f"alg:{top}:{leaf}", ".".join(below[:-1]) or None)
    return None


def parse_sentinel_role(role: str) -> tuple[str, int] | None:
    """``("is-ta", 38696)`` for ``is-ta:38696``, else None."""
    kind, _, tag = role.partition(":")
    if kind in ("is-ta", "not-ta") and tag.isdigit():
        return kind, int(tag)
    return None


def is_bogus_role(role: str) -> bool:
    return role.startswith("bogus-") and role[6:] in BOGUS_KINDS


KNOWN_ROLE_FORMS = (
    "valid, bogus-<kind>, is-ta:<tag>, not-ta:<tag>, whoami, big, dnskey, "
    "alg:<d?a?n?>:valid, alg:<d?a?n?>:bogus-sig"
)


def check_role(role: str) -> str:
    """Validate a role string given by a user (``--role``) or a manifest."""
    if role in ("valid", "whoami", "big", "dnskey") or is_bogus_role(role):
        return role
    if parse_sentinel_role(role):
        _, tag = parse_sentinel_role(role)  # type: ignore[misc]
        if tag <= 65535:
            return role
    parts = role.split(":")
    if (
        len(parts) == 3
        and parts[0] == "alg"
        and parse_matrix_label(parts[1])
        and (parts[2] == "valid" or is_bogus_role(parts[2]))
    ):
        return role
    raise ValueError(f"unknown role {role!r}; roles are: {KNOWN_ROLE_FORMS}")
