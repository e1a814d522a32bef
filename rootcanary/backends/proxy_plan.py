"""What a proxy campaign needs from its scenario besides the ``[proxy]`` section."""

from __future__ import annotations

import logging
from pathlib import Path

from authserver.http import RunningResponder, start_in_thread
from rootcanary.backends.local_plan import scenario_tests
from rootcanary.backends.proxy import JoinSources
from rootcanary.scenario import Scenario
from rootcanary.testbed import default_run_dir

__all__ = [
    "default_http_log",
    "http_log_for",
    "join_sources",
    "scenario_query_log",
    "scenario_tests",
    "start_responder",
]

log = logging.getLogger("rootcanary.proxy")

HTTP_LOG_NAME = "http.jsonl"


def default_http_log(query_log: Path | None) -> Path | None:
    """The HTTP responder's log sits beside the query log unless told otherwise."""
    return query_log.parent / HTTP_LOG_NAME if query_log is not None else None


def scenario_query_log(scenario: Scenario) -> Path | None:
    """The testbed server's log when there is a ``[testbed]`` (the testbed
    starts its server with its own ``--query-log``), else ``[server] query_log``."""
    if scenario.testbed is not None:
        return (default_run_dir(scenario) / "server" / "queries.jsonl").resolve()
    if scenario.server.query_log is not None:
        return scenario.server.query_log.resolve()
    return None


def http_log_for(scenario: Scenario, query_log: Path | None) -> Path | None:
    """``[proxy] http_log``, else beside ``query_log``."""
    if scenario.proxy is not None and scenario.proxy.http_log is not None:
        return scenario.proxy.http_log.resolve()
    return default_http_log(query_log)


def join_sources(scenario: Scenario) -> JoinSources:
    query_log = scenario_query_log(scenario)
    return JoinSources(query_log, http_log_for(scenario, query_log))


def start_responder(
    scenario: Scenario, query_log: Path | None, http_log: Path | None
) -> RunningResponder | None:
    """Start the HTTP responder when ``[server] http_listen`` asks for it.

    ``rootcanary serve`` calls this; the log is ``http_log``, else
    ``[proxy] http_log``, else ``http.jsonl`` beside the query log.
    """
    if not scenario.server.http_listen:
        return None
    path = http_log or http_log_for(scenario, query_log or scenario.server.query_log)
    if path is None:
        log.warning(
            "HTTP responder without a log: give --http-log FILE (or --query-log) "
            "to record which exits fetched which names"
        )
    return start_in_thread(scenario.server.http_listen, path)
