"""The RIPE Atlas REST API v2 through ripe.atlas.cousteau, with what it lacks.

cousteau builds the requests and sends them; this module adds an HTTP timeout
(cousteau has none, so a hung server would block forever), the HTTP status of
every answer (cousteau only says ok or not), retries with exponential backoff
on 429 and 5xx, and the translation of the API's error body into
:class:`~rootcanary.errors.AtlasAPIError` with the field pointers it names.

The API key travels as a :class:`~rootcanary.secrets.Secret` and is revealed
only when a cousteau request object is built; every message that could quote a
server or library text goes through :func:`~rootcanary.secrets.redact`.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ripe.atlas.cousteau import (
    AtlasCreateRequest,
    AtlasRequest,
    AtlasResultsRequest,
    AtlasSource,
    AtlasStopRequest,
    Dns,
)

from rootcanary.errors import AtlasAPIError, AtlasError
from rootcanary.secrets import Secret, redact

log = logging.getLogger("rootcanary.atlas")

PUBLIC_SERVER = "atlas.ripe.net"
#: Measurement status ids that occupy one of the account's concurrent slots:
#: Specified, Scheduled, Ongoing (REST API measurement ``status.id``).
RUNNING_STATUSES = (0, 1, 2)
#: Status ids after which a measurement produces no more results.
FINISHED_STATUSES = (4, 5, 6, 7, 8)
PAGE_SIZE = 500  # the API's maximum page_size


@dataclass(frozen=True)
class Endpoint:
    """Where the API is: ``host[:port]`` (always HTTPS) and the CA file to trust."""

    server: str = PUBLIC_SERVER
    ca_file: Path | None = None

    @property
    def verify(self) -> bool | str:
        return str(self.ca_file) if self.ca_file else True

    @property
    def public(self) -> bool:
        return self.server == PUBLIC_SERVER

    def url(self, path: str) -> str:
        return f"https://{self.server}{path}"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry 429 and 5xx answers."""

    retries: int = 6
    backoff: float = 2.0
    backoff_max: float = 120.0
    timeout: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry ``attempt`` (0-based)."""
        if retry_after is not None:
            return retry_after  # the server said how long; honour it
        base = min(self.backoff_max, self.backoff * 2.0**attempt)
        # Jitter, so that several clients backing off do not retry in step.
        return base * (0.5 + random.random() / 2)


class CreateOutcomeUnknown(AtlasError):
    """A creation request got no clear answer: it may or may not have worked."""


@dataclass(frozen=True)
class Reply:
    ok: bool
    status: int | None  # None: no HTTP answer at all (connection failure)
    body: Any
    retry_after: float | None = None


def _capturing(base: Any) -> Any:
    """A cousteau request class that keeps the last ``requests.Response``."""

    class Capturing(base):  # type: ignore[misc]
        last_response: Any = None

        def get_http_method(self, method: str) -> Any:
            response = super().get_http_method(method)
            self.last_response = response
            return response

    Capturing.__name__ = f"Capturing{base.__name__}"
    return Capturing


_Request = _capturing(AtlasRequest)
_Create = _capturing(AtlasCreateRequest)
_Results = _capturing(AtlasResultsRequest)
_Stop = _capturing(AtlasStopRequest)


def naive_utc(seconds: int) -> datetime:
    """The form cousteau converts exactly (it takes naive datetimes as UTC)."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def cousteau_create_request(body: dict[str, Any], **kwargs: Any) -> Any:
    """Build cousteau's creation request for ``body``, checking it sends ``body``.

    The dry run prints ``body``; this makes sure cousteau sends the same thing
    (it copies definition fields as given and converts times itself).
    """
    request = _Create(
        measurements=[Dns(**definition) for definition in body["definitions"]],
        sources=[AtlasSource(**source) for source in body["probes"]],
        is_oneoff=body["is_oneoff"],
        start_time=naive_utc(body["start_time"]) if "start_time" in body else None,
        stop_time=naive_utc(body["stop_time"]) if "stop_time" in body else None,
        bill_to=body.get("bill_to"),
        **kwargs,
    )
    request._construct_post_data()
    if request.post_data != body:
        raise AtlasError(
            "internal error: cousteau would send a different request body than "
            "the one planned; nothing was sent"
        )
    return request


class AtlasClient:
    """The calls rootcanary makes, each retried and translated to our errors."""

    def __init__(
        self,
        endpoint: Endpoint,
        key: Secret | None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = endpoint
        self._key = key
        self.policy = policy or RetryPolicy()
        self._sleep = sleep

    # -- the calls ----------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> list[int]:
        """POST one creation request; the new ids, one per definition, in order.

        A 429 is retried (the API refused before doing anything). A 5xx or a
        lost connection raises :class:`CreateOutcomeUnknown` instead: the
        measurements may exist, and only the caller can find out (by tag).
        """
        reply = self._send(
            lambda: cousteau_create_request(body, **self._request_kwargs()),
            "create",
            "creating measurements",
            idempotent=False,
        )
        ids = reply.body.get("measurements") if isinstance(reply.body, dict) else None
        if (
            not isinstance(ids, list)
            or len(ids) != len(body["definitions"])
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
        ):
            raise CreateOutcomeUnknown(
                "creating measurements: the API answered without one id per "
                f"definition ({self._show(reply.body)})"
            )
        return list(ids)

    def measurement(self, msm_id: int) -> dict[str, Any]:
        reply = self._get(f"/api/v2/measurements/{msm_id}/", f"measurement {msm_id}")
        if not isinstance(reply.body, dict):
            raise AtlasError(f"measurement {msm_id}: not a JSON object")
        return reply.body

    def my_measurements(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """The key owner's measurements matching ``filters``, every page."""
        yield from self._pages(
            "/api/v2/measurements/my/", "listing your measurements", filters
        )

    def count_running(self) -> int:
        """How many of the account's measurements occupy a concurrent slot."""
        reply = self._get(
            "/api/v2/measurements/my/",
            "counting your running measurements",
            status__in=",".join(map(str, RUNNING_STATUSES)),
            page_size=1,
        )
        count = reply.body.get("count") if isinstance(reply.body, dict) else None
        if not isinstance(count, int):
            raise AtlasError("counting your running measurements: no count returned")
        return count

    def probes(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Probe metadata (public, no key needed), every page."""
        yield from self._pages("/api/v2/probes/", "listing probes", filters)

    def results(self, msm_id: int, start: int | None, stop: int | None) -> list[Any]:
        """Results with ``start <= timestamp <= stop`` (inclusive; None: open)."""
        what = f"results of measurement {msm_id}"
        reply = self._send(
            lambda: _Results(
                msm_id=msm_id,
                start=naive_utc(start) if start is not None else None,
                stop=naive_utc(stop) if stop is not None else None,
                **self._request_kwargs(),
            ),
            "create",
            what,
            idempotent=True,
        )
        if not isinstance(reply.body, list):
            raise AtlasError(f"{what}: expected a JSON array, got {self._show(reply)}")
        return reply.body

    def stop(self, msm_id: int) -> None:
        self._send(
            lambda: _Stop(msm_id=msm_id, **self._request_kwargs()),
            "create",
            f"stopping measurement {msm_id}",
            idempotent=True,
        )

    # -- machinery ----------------------------------------------------------------

    def _request_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "server": self.endpoint.server,
            "verify": self.endpoint.verify,
            "user_agent": "rootcanary (ripe.atlas.cousteau)",
        }
        if self._key:
            kwargs["key"] = self._key.reveal()
        return kwargs

    def _plain(self, path: str) -> Any:
        return _Request(url_path=path, **self._request_kwargs())

    def _get(self, path: str, what: str, **params: Any) -> Reply:
        return self._send(
            functools.partial(self._plain, path),
            "get",
            what,
            idempotent=True,
            params=params,
        )

    def _pages(
        self, path: str, what: str, filters: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"page_size": PAGE_SIZE, **filters}
        url_path: str | None = path
        while url_path:
            reply = self._send(
                functools.partial(self._plain, url_path),
                "get",
                what,
                idempotent=True,
                params=params,
            )
            if not isinstance(reply.body, dict) or not isinstance(
                reply.body.get("results"), list
            ):
                raise AtlasError(f"{what}: not a page of results")
            yield from reply.body["results"]
            following = reply.body.get("next")
            if not following:
                return
            # The next link is absolute and carries every filter; keep only
            # path and query so that it goes to our endpoint (atlas.md §3).
            parts = urlsplit(str(following))
            url_path = f"{parts.path}?{parts.query}" if parts.query else parts.path
            params = {}

    def _send(
        self,
        build: Callable[[], Any],
        call: str,
        what: str,
        *,
        idempotent: bool,
        params: dict[str, Any] | None = None,
    ) -> Reply:
        attempt = 0
        while True:
            reply = self._once(build, call, params)
            if reply.ok:
                return reply
            transient = reply.status is None or reply.status >= 500
            if reply.status != 429 and not transient:
                raise self._error(what, reply)
            if transient and not idempotent:
                raise CreateOutcomeUnknown(
                    f"{what}: {self._describe(reply)}; the request may have been "
                    "carried out"
                )
            if attempt >= self.policy.retries:
                raise AtlasError(
                    f"{what}: {self._describe(reply)}; gave up after "
                    f"{attempt + 1} attempts"
                )
            delay = self.policy.delay(attempt, reply.retry_after)
            log.warning(
                "%s: %s; retrying in %.1f s (attempt %d of %d)",
                what,
                self._describe(reply),
                delay,
                attempt + 2,
                self.policy.retries + 1,
            )
            self._sleep(delay)
            attempt += 1

    def _once(
        self, build: Callable[[], Any], call: str, params: dict[str, Any] | None
    ) -> Reply:
        request = build()
        request.http_method_args["timeout"] = self.policy.timeout
        if call == "get":
            ok, body = request.get(**(params or {}))
        else:
            ok, body = request.create()
        response = request.last_response
        if response is None:
            return Reply(False, None, body)
        return Reply(
            bool(ok),
            int(response.status_code),
            body,
            _retry_after(response.headers.get("Retry-After")),
        )

    def _describe(self, reply: Reply) -> str:
        if reply.status is None:
            return f"no answer from {self.endpoint.server} ({self._show(reply.body)})"
        return f"HTTP {reply.status}"

    def _show(self, value: Any) -> str:
        if isinstance(value, tuple) and value:
            value = value[0]  # cousteau returns exc.args on a connection failure
        text = redact(str(value), self._key)
        return text if len(text) <= 300 else text[:300] + "…"

    def _error(self, what: str, reply: Reply) -> AtlasAPIError:
        error = reply.body.get("error") if isinstance(reply.body, dict) else None
        if not isinstance(error, dict):
            return AtlasAPIError(
                f"{what}: HTTP {reply.status}: {self._show(reply.body)}",
                status=reply.status,
            )
        title = redact(str(error.get("title") or ""), self._key)
        detail = redact(str(error.get("detail") or ""), self._key)
        problems: list[str] = []
        pointers: list[str] = []
        for item in error.get("errors") or ():
            if not isinstance(item, dict):
                continue
            source = item.get("source")
            if not isinstance(source, dict):
                source = {}
            where = source.get("pointer") or source.get("parameter") or ""
            if where:
                pointers.append(str(where))
            problems.append(
                redact(f"{where}: {item.get('detail', '')}".strip(": "), self._key)
            )
        message = f"{what}: HTTP {reply.status} {title}: {detail}".rstrip(": ")
        if problems:
            message += " (" + "; ".join(problems) + ")"
        if reply.status == 403:
            message += (
                "; check the API key (--key, RIPE_ATLAS_CREATE_KEY or the config "
                "file) and that it may create and list your measurements"
            )
        return AtlasAPIError(
            message, status=reply.status, detail=detail, pointers=tuple(pointers)
        )


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: fall back to our own backoff
