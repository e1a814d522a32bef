"""Keep secrets (API keys, proxy passwords) out of logs, files and tracebacks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_REDACTED = "***"


@dataclass(frozen=True)
class Secret:
    """A string that never shows itself: ``repr`` and ``str`` print ``***``.

    Passing a :class:`Secret` around instead of a plain ``str`` means a stray
    f-string, log call or traceback with locals cannot leak the value; code that
    needs it calls :meth:`reveal` at the one place it is sent.
    """

    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return _REDACTED

    def __repr__(self) -> str:
        return f"Secret({_REDACTED})"

    def __bool__(self) -> bool:
        return bool(self._value)


def redact(text: str, *secrets: Secret | str | None) -> str:
    """Return ``text`` with every occurrence of each secret replaced by ``***``.

    Also masks the password part of ``scheme://user:password@host`` URLs, so a
    proxy URL quoted in an error message stays safe.
    """
    for secret in secrets:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if value:
            text = text.replace(value, _REDACTED)
    return re.sub(r"(\w+://[^/\s:@]*:)[^@\s/]+@", r"\1" + _REDACTED + "@", text)
