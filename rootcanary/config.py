"""Reading TOML configuration with errors that name the file, the key and the fault.

Every scenario section is read through a :class:`Table`, which remembers where
it came from (``scenarios/canary.toml: zones[2].algorithm``) and complains
about keys it was never asked for, so a typo never passes silently.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from rootcanary.errors import ScenarioError

T = TypeVar("T")


class _Missing:
    def __repr__(self) -> str:
        return "<required>"


MISSING: Any = _Missing()

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``"90s"``, ``"5m"``, ``"1h30m"``, ``"14d"`` or ``"250ms"`` in seconds."""
    compact = text.strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    for match in _DURATION.finditer(compact):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not compact or pos != len(compact):
        raise ValueError(f"not a duration: {text!r} (write e.g. 90s, 5m, 1h30m, 14d)")
    return total


def parse_hostport(text: str, default_port: int = 53) -> tuple[str, int]:
    """``127.0.0.1:53``, ``[::1]:5353``, ``::1`` or ``127.0.0.1`` as (host, port)."""
    text = text.strip()
    host, port = text, default_port
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"unclosed '[' in {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"expected ':PORT' after ']' in {text!r}")
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"not an IP address: {host!r} in {text!r}") from None
    return host, port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"bad port {text!r} in {whole!r}")
    return int(text)


def load_toml(path: Path) -> tuple[dict[str, Any], str]:
    """Parse a TOML file, returning its data and its text."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 text: {exc.reason}") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None


class Table:
    """One TOML table being read, with its location for error messages."""

    def __init__(
        self, data: dict[str, Any], source: Path | str, where: str = ""
    ) -> None:
        self.data = data
        self.source = str(source)
        self.where = where
        self._used: set[str] = set()

    # -- errors ---------------------------------------------------------------

    def location(self, key: str | None = None) -> str:
        path = ".".join(p for p in (self.where, key) if p)
        return f"{self.source}: {path}" if path else self.source

    def fail(self, key: str | None, message: str) -> NoReturn:
        raise ScenarioError(f"{self.location(key)}: {message}")

    # -- access -----------------------------------------------------------------

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = MISSING) -> Any:
        self._used.add(key)
        if key in self.data:
            return self.data[key]
        if default is MISSING:
            self.fail(key, "required key is missing")
        return default

    def _typed(self, key: str, kinds: tuple[type, ...], what: str, default: Any) -> Any:
        value = self.raw(key, default)
        if value is default and default is not MISSING:
            return value
        # bool is an int in Python; never accept true where a number is meant.
        if isinstance(value, bool) and bool not in kinds:
            self.fail(key, f"expected {what}, got {_show(value)}")
        if not isinstance(value, kinds):
            self.fail(key, f"expected {what}, got {_show(value)}")
        return value

    def text(
        self, key: str, default: Any = MISSING, choices: tuple[str, ...] = ()
    ) -> Any:
        value = self._typed(key, (str,), "a string", default)
        if choices and value is not default and value not in choices:
            self.fail(key, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def flag(self, key: str, default: Any = MISSING) -> Any:
        return self._typed(key, (bool,), "true or false", default)

    def integer(
        self,
        key: str,
        default: Any = MISSING,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> Any:
        value = self._typed(key, (int,), "an integer", default)
        if value is default:
            return value
        if minimum is not None and value < minimum:
            self.fail(key, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            self.fail(key, f"must be at most {maximum}, got {value}")
        return value

    def number(
        self, key: str, default: Any = MISSING, minimum: float | None = None
    ) -> Any:
        value = self._typed(key, (int, float), "a number", default)
        if value is not default and minimum is not None and value < minimum:
            self.fail(key, f"must be at least {minimum}, got {value}")
        return value

    def duration(self, key: str, default: Any = MISSING, minimum: float = 0.0) -> Any:
        """Seconds, from a number or a string such as ``"14d"`` or ``"90s"``."""
        value = self.raw(key, default)
        if value is default and default is not MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            self.fail(
                key, f"expected a duration such as 90s, 5m or 14d, got {_show(value)}"
            )
        if isinstance(value, str):
            try:
                seconds = parse_duration(value)
            except ValueError as exc:
                self.fail(key, str(exc))
        else:
            seconds = float(value)
        if seconds < minimum:
            self.fail(key, f"must be at least {minimum:g} seconds, got {seconds:g}")
        return seconds

    def items(
        self, key: str, kind: type[T], default: Any = MISSING, what: str = ""
    ) -> Any:
        value = self.raw(key, default)
        if value is default and default is not MISSING:
            return value
        label = what or {str: "strings", int: "integers"}.get(kind, kind.__name__)
        if not isinstance(value, list):
            self.fail(key, f"expected a list of {label}, got {_show(value)}")
        for index, item in enumerate(value):
            if (isinstance(item, bool) and kind is not bool) or not isinstance(
                item, kind
            ):
                self.fail(
                    f"{key}[{index}]", f"expected {label[:-1]}, got {_show(item)}"
                )
        return tuple(value)

    def table(self, key: str, default: Any = MISSING) -> Any:
        value = self.raw(key, default)
        if value is default and default is not MISSING:
            return value
        if not isinstance(value, dict):
            self.fail(key, f"expected a table, got {_show(value)}")
        return Table(value, self.source, self._sub(key))

    def tables(self, key: str) -> list[Table]:
        """An array of tables (``[[key]]``); absent means empty."""
        value = self.raw(key, [])
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            self.fail(
                key, f"expected an array of tables ([[{key}]]), got {_show(value)}"
            )
        out = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                self.fail(f"{key}[{index}]", f"expected a table, got {_show(item)}")
            out.append(Table(item, self.source, f"{self._sub(key)}[{index}]"))
        return out

    def hostports(self, key: str, default: Any = MISSING, port: int = 53) -> Any:
        values = self.items(key, str, default)
        if values is default and default is not MISSING:
            return values
        out = []
        for index, text in enumerate(values):
            try:
                out.append(parse_hostport(text, port))
            except ValueError as exc:
                self.fail(f"{key}[{index}]", str(exc))
        return tuple(out)

    def path(self, key: str, default: Any = MISSING) -> Any:
        """A path; relative paths are taken relative to the scenario file."""
        value = self.text(key, default)
        if value is default and default is not MISSING:
            return value
        path = Path(value).expanduser()
        if not path.is_absolute() and self.source and Path(self.source).exists():
            path = Path(self.source).resolve().parent / path
        return path

    def keys(self) -> Iterator[str]:
        return iter(self.data)

    def done(self) -> None:
        """Fail on keys nobody read: they are typos or unsupported settings."""
        unknown = sorted(set(self.data) - self._used)
        if unknown:
            names = ", ".join(repr(k) for k in unknown)
            self.fail(None, f"unknown key{'s' if len(unknown) > 1 else ''} {names}")

    def _sub(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key


def _show(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"
