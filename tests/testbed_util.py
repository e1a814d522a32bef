"""Writing testbed scenarios for tests, on an address block of their own."""

from __future__ import annotations

from pathlib import Path

ZONES = """
[zone_defaults]
algorithm = 13
ttl = 60
dnskey_ttl = 60

[[zone]]
apex = "."
nameservers = [{{ name = "a.root-servers.net.", addresses = ["{server}"] }}]

[[zone]]
apex = "test."
nameservers = [{{ name = "ns1.test.", addresses = ["{server}"] }}]

[[zone]]
apex = "canary.test."
test_names = true
nameservers = [{{ name = "ns1.canary.test.", addresses = ["{server}"] }}]
answer_v4 = "{server}"
"""


def write_scenario(
    directory: Path,
    block: str,
    resolvers: list[tuple[str, str, str]],
    *,
    name: str = "tb",
    tests: str = "[tests]\nroot_keytags = true\nkeytags = [20326]\n",
    testbed_extra: str = "",
    extra: str = "",
) -> Path:
    """A scenario whose server is ``<block>.1`` and resolvers ``<block>.11`` on."""
    server = f"{block}.1"
    text = f'name = "{name}"\n[server]\nlisten = ["{server}:53"]\n'
    text += ZONES.format(server=server)
    text += tests
    text += f'\n[testbed]\nserver = "{server}"\nrun_dir = "run"\n{testbed_extra}\n'
    for index, (rname, implementation, variant) in enumerate(resolvers):
        text += (
            f'[[testbed.resolver]]\nname = "{rname}"\n'
            f'implementation = "{implementation}"\nvariant = "{variant}"\n'
            f'address = "{block}.{11 + index}"\n\n'
        )
    text += extra
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path
