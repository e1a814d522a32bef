"""The one exception tree of rootcanary.

Every error that a user can cause or fix is a :class:`RootCanaryError`; the CLI
catches it once, prints its message on one line to stderr and exits 1. Anything
else escaping is a bug and keeps its traceback.

::

    RootCanaryError
    ├── ConfigError              bad options or files given by the user
    │   └── ScenarioError        a scenario TOML file that does not validate
    ├── KeyStoreError            DNSSEC key files: unsafe modes, unreadable
    ├── ServerError              the authoritative server cannot run
    ├── DataError                input data that cannot be read at all
    ├── ProbeError               the local backend cannot probe
    ├── AtlasError               the RIPE Atlas backend
    │   └── AtlasAPIError        the API refused a request (status, pointers)
    ├── ProxyError               the proxy-network backend
    ├── TestbedError             the local testbed of real resolvers
    │   └── MissingBinaryError   a daemon is not installed (names the package)
    └── ReportError              reports and plots

Messages carry the facts (file and key, measurement id, seconds waited) and
never a secret: API keys and proxy passwords are redacted before they can reach
an exception (see :func:`rootcanary.secrets.redact`).
"""

from __future__ import annotations


class RootCanaryError(Exception):
    """Base of every error rootcanary reports to its user."""


class ConfigError(RootCanaryError):
    """An option, environment variable or configuration file is wrong."""


class ScenarioError(ConfigError):
    """A scenario file does not validate; the message names file and key."""


class KeyStoreError(RootCanaryError):
    """A DNSSEC key file is missing, unreadable or has unsafe permissions."""


class ServerError(RootCanaryError):
    """The authoritative test-zone server cannot start or keep running."""


class DataError(RootCanaryError):
    """An input file cannot be read at all (malformed lines are counted instead)."""


class ProbeError(RootCanaryError):
    """The local backend cannot probe the resolvers it was given."""


class AtlasError(RootCanaryError):
    """The RIPE Atlas backend failed; the message says what was not done."""


class AtlasAPIError(AtlasError):
    """The RIPE Atlas API answered with an error.

    ``status`` is the HTTP status, ``detail`` the API's own message and
    ``pointers`` the RFC 6901 field pointers it named (``/definitions/0/af``).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        detail: str | None = None,
        pointers: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.pointers = pointers


class ProxyError(RootCanaryError):
    """The proxy-network backend cannot run."""


class TestbedError(RootCanaryError):
    """The local testbed cannot be brought up, queried or torn down."""

    __test__ = False  # not a pytest test class, despite the name


class MissingBinaryError(TestbedError):
    """A program the testbed needs is not installed."""

    def __init__(self, binary: str, package: str) -> None:
        super().__init__(
            f"{binary} not found on PATH: install the Debian package {package} "
            f"(apt-get install {package}), or run scripts/setup.sh"
        )
        self.binary = binary
        self.package = package


class ReportError(RootCanaryError):
    """A report or plot cannot be produced."""
