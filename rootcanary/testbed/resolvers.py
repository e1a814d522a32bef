"""Configuration of each real resolver, generated from the scenario.

Pure functions: a :class:`~rootcanary.scenario.testbed.ResolverSpec` plus the
anchors and paths in, a :class:`Launch` (files to write, the command line) out.
The settings and their reasons come from tested configurations on Debian 12
(Unbound 1.17, BIND 9.18, Knot Resolver 5.6, PowerDNS Recursor 4.8).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rootcanary.scenario.testbed import ResolverSpec
from rootcanary.testbed.anchors import (
    Anchor,
    bind_trust_anchors,
    dnskey_zone_lines,
    pdns_lua,
)

#: binary, Debian package
BINARIES: dict[str, tuple[str, str]] = {
    "unbound": ("unbound", "unbound"),
    "bind": ("named", "bind9"),
    "kresd": ("kresd", "knot-resolver"),
    "pdns-recursor": ("pdns_recursor", "pdns-recursor"),
}

# TLDs with built-in local answers (RFC 6761 special-use names) that the
# resolvers would otherwise answer NXDOMAIN for without asking our root.
SPECIAL_USE_TLDS = ("test.", "invalid.", "example.", "localhost.", "onion.", "local.")


@dataclass(frozen=True)
class Settings:
    """What every resolver of one testbed shares."""

    hints: Path
    anchor: Anchor  # the private root's KSK
    stale: Anchor  # a KSK the root does not use
    tlds: tuple[str, ...]  # TLDs of the private hierarchy, e.g. ("test.",)
    holddown: float | None = None
    refresh: float | None = None


@dataclass(frozen=True)
class Launch:
    name: str
    implementation: str
    binary: str
    package: str
    argv: tuple[str, ...]
    #: Written at every start (configuration).
    files: tuple[tuple[Path, str], ...]
    #: Written only when absent: initial RFC 5011 state the daemon then rewrites.
    seeds: tuple[tuple[Path, str], ...] = ()
    #: Removed before every start of a ``stateless`` resolver.
    state: tuple[Path, ...] = ()


def anchor_for(spec: ResolverSpec, settings: Settings) -> Anchor | None:
    if spec.variant == "off":
        return None
    return settings.stale if spec.variant == "stale" else settings.anchor


def managed(spec: ResolverSpec) -> bool:
    """RFC 5011-managed (rewritable) anchor, or a static one."""
    return spec.variant in ("validating", "stateless", "stale")


def render(
    spec: ResolverSpec, settings: Settings, directory: Path, binary: str
) -> Launch:
    renderers = {
        "unbound": _unbound,
        "bind": _bind,
        "kresd": _kresd,
        "pdns-recursor": _pdns_recursor,
    }
    return renderers[spec.implementation](spec, settings, directory, binary)


def _unbound(spec: ResolverSpec, s: Settings, d: Path, binary: str) -> Launch:
    anchor = anchor_for(spec, s)
    lines = [
        "server:",
        f"  interface: {spec.address}@{spec.port}",
        # Our own source address, so the authserver's log and whoami tell the
        # resolvers apart.
        f"  outgoing-interface: {spec.address}",
        "  do-not-query-localhost: no",  # the authorities are on 127/8
        "  access-control: 127.0.0.0/8 allow",
        "  do-ip6: no",
        '  username: ""',
        '  chroot: ""',
        f'  directory: "{d}"',
        f'  pidfile: "{d}/unbound.pid"',
        "  use-syslog: no",
        '  logfile: ""',
        "  verbosity: 1",
        "  val-log-level: 2",
        "  num-threads: 1",
        f'  root-hints: "{s.hints}"',
        "  trust-anchor-signaling: yes",  # RFC 8145 §5
        "  root-key-sentinel: yes",  # RFC 8509
        "  ede: yes",  # RFC 8914; off by default in 1.17
        "  qname-minimisation: yes",
    ]
    lines += [
        f'  local-zone: "{tld}" nodefault' for tld in s.tlds if tld in SPECIAL_USE_TLDS
    ]
    seeds: list[tuple[Path, str]] = []
    state: list[Path] = []
    if anchor is None:
        lines.append('  module-config: "iterator"')
    else:
        lines.append('  module-config: "validator iterator"')
        key_file = d / "root.key"
        if managed(spec):
            lines.append(f'  auto-trust-anchor-file: "{key_file}"')
            seeds.append((key_file, dnskey_zone_lines(anchor)))
            state.append(key_file)
        else:
            lines.append(f'  trust-anchor-file: "{d / "root-static.key"}"')
        if s.holddown is not None:
            hold = max(1, int(s.holddown))
            lines += [
                f"  add-holddown: {hold}",
                f"  del-holddown: {hold}",
                f"  keep-missing: {hold}",
                "  permit-small-holddown: yes",  # else the 1 h minimum applies
            ]
    lines += ["remote-control:", "  control-enable: no", ""]
    files = [(d / "unbound.conf", "\n".join(lines))]
    if anchor is not None and not managed(spec):
        files.append((d / "root-static.key", dnskey_zone_lines(anchor)))
    return Launch(
        spec.name,
        spec.implementation,
        "unbound",
        "unbound",
        (binary, "-d", "-c", str(d / "unbound.conf")),
        tuple(files),
        tuple(seeds),
        tuple(state),
    )


def _bind(spec: ResolverSpec, s: Settings, d: Path, binary: str) -> Launch:
    anchor = anchor_for(spec, s)
    validation = "no" if anchor is None else "yes"
    conf = f"""options {{
  directory "{d}";
  pid-file "{d}/named.pid";
  session-keyfile "{d}/session.key";
  // Must be writable even with static keys only.
  managed-keys-directory "{d}";
  listen-on port {spec.port} {{ {spec.address}; }};
  listen-on-v6 {{ none; }};
  query-source address {spec.address};
  recursion yes;
  allow-query {{ 127.0.0.0/8; }};
  allow-recursion {{ 127.0.0.0/8; }};
  dnssec-validation {validation};
  root-key-sentinel yes;
  trust-anchor-telemetry yes;
  max-cache-size 32m;
}};
// No rndc channel: several instances would clash on 127.0.0.1:953.
controls {{ }};
zone "." {{ type hint; file "{s.hints}"; }};
"""
    if anchor is not None:
        conf += bind_trust_anchors(anchor, managed(spec))
    argv = [binary, "-4", "-g", "-n", "1", "-c", str(d / "named.conf")]
    if s.holddown is not None or s.refresh is not None:
        # Test switches of named (bin/named/main.c): the "hour/day/month" units
        # of RFC 5011 timing in seconds; hold-down is the "month".
        hour = max(1, int(s.refresh or 2))
        month = max(hour, int(s.holddown or 30 * 86400))
        day = max(hour, min(month, 20))
        argv += ["-T", f"mkeytimers={hour}/{day}/{month}", "-T", f"tat={max(hour, 10)}"]
    state = (d / "managed-keys.bind", d / "managed-keys.bind.jnl")
    return Launch(
        spec.name,
        spec.implementation,
        "named",
        "bind9",
        tuple(argv),
        ((d / "named.conf", conf),),
        (),
        state,
    )


def _kresd(spec: ResolverSpec, s: Settings, d: Path, binary: str) -> Launch:
    anchor = anchor_for(spec, s)
    tlds = ", ".join(f"'{tld}'" for tld in s.tlds if tld in SPECIAL_USE_TLDS)
    lines = [
        "log_target('stderr')",
        "log_level('notice')",
        "net.ipv6 = false",
        f"net.listen('{spec.address}', {spec.port}, {{ kind = 'dns' }})",
        f"net.outgoing_v4('{spec.address}')",
        f"cache.open(20 * MB, 'lmdb://{d}/cache')",
        # Without ALLOW_LOCAL kresd ignores glue on 127/8 ("invalid glue").
        "policy.add(policy.all(policy.FLAGS({'ALLOW_LOCAL'})))",
    ]
    if tlds:
        # Special-use TLDs are answered locally (NXDOMAIN, EDE 21) unless passed.
        lines.append(
            f"policy.add(policy.suffix(policy.PASS, policy.todnames({{{tlds}}})))"
        )
    lines += [
        "modules.load('hints > iterate')",
        f"hints.root_file('{s.hints}')",
        # The Debian sandbox already loaded /usr/share/dns/root.key.
        "trust_anchors.remove('.')",
    ]
    seeds: list[tuple[Path, str]] = []
    files: list[tuple[Path, str]] = []
    state: list[Path] = [d / "cache"]
    if anchor is not None:
        key_file = d / ("root.keys" if managed(spec) else "root-static.keys")
        if managed(spec):
            if s.holddown is not None:
                lines.append(
                    f"ta_update.hold_down_time = {max(1, int(s.holddown))} * sec"
                )
            if s.refresh is not None:
                lines.append(f"ta_update.refresh_time = {max(1, int(s.refresh))} * sec")
            seeds.append((key_file, dnskey_zone_lines(anchor)))
            state.append(key_file)
        else:
            files.append((key_file, dnskey_zone_lines(anchor)))
        readonly = "false" if managed(spec) else "true"
        lines.append(f"trust_anchors.add_file('{key_file}', {readonly})")
    files.insert(0, (d / "config.lua", "\n".join(lines) + "\n"))
    return Launch(
        spec.name,
        spec.implementation,
        "kresd",
        "knot-resolver",
        (binary, "-n", "-c", str(d / "config.lua"), str(d / "rundir")),
        tuple(files),
        tuple(seeds),
        tuple(state),
    )


def _pdns_recursor(spec: ResolverSpec, s: Settings, d: Path, binary: str) -> Launch:
    anchor = anchor_for(spec, s)
    conf = [
        f"local-address={spec.address}",
        f"local-port={spec.port}",
        f"query-local-address={spec.address}",
        "allow-from=127.0.0.0/8",
        "dont-query=",  # the default refuses 127.0.0.0/8 and 192.0.2.0/24
        f"hint-file={s.hints}",
        f"dnssec={'process-no-validate' if anchor is None else 'validate'}",
        f"lua-config-file={d / 'ta.lua'}",
        "extended-resolution-errors=yes",
        f"socket-dir={d}",
        "daemon=no",
        "disable-syslog=yes",
        "log-timestamp=yes",
        "loglevel=5",
        "threads=1",
        "security-poll-suffix=",  # else it asks *.secpoll.powerdns.com via our root
        "",
    ]
    # PowerDNS Recursor 4.8 has no RFC 5011: every variant gets a static anchor.
    lua = pdns_lua(anchor) if anchor is not None else "clearTA('.')\n"
    return Launch(
        spec.name,
        spec.implementation,
        "pdns_recursor",
        "pdns-recursor",
        (binary, f"--config-dir={d}"),
        ((d / "recursor.conf", "\n".join(conf)), (d / "ta.lua", lua)),
        (),
        (),
    )
