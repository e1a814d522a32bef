"""The RIPE Atlas backend: DNS measurements through each probe's own resolvers.

The pieces, each usable on its own:

* :mod:`.definitions` (pure): planned tests to request bodies, the credit
  estimate, the slot token in descriptions;
* :mod:`.probes` (pure): probe selections to the ``probes`` of each request,
  split by id over the per-measurement limit;
* :mod:`.client`: the REST API through cousteau, with timeouts, retries and
  the API's errors as :class:`~rootcanary.errors.AtlasAPIError`;
* :mod:`.schedule`: plan, reconcile by campaign tag, create what is missing;
* :mod:`.fetch` and :mod:`.store`: incremental results into gzip JSON lines;
* :mod:`.status`: state of each measurement, stopping them;
* :mod:`.keys`: the API key from ``--key``, the environment or a file.
"""

from rootcanary.backends.atlas.campaign import AtlasCampaign, load_campaign, locked
from rootcanary.backends.atlas.client import (
    AtlasClient,
    CreateOutcomeUnknown,
    Endpoint,
    RetryPolicy,
)
from rootcanary.backends.atlas.definitions import Estimate, Plan, Slot, estimate
from rootcanary.backends.atlas.fetch import Fetcher, FetchReport
from rootcanary.backends.atlas.keys import find_key, require_key
from rootcanary.backends.atlas.schedule import (
    Created,
    Scheduler,
    pending_bodies,
    prepare,
    zone_problem,
)
from rootcanary.backends.atlas.status import MeasurementState, select, states, stop

__all__ = [
    "AtlasCampaign",
    "AtlasClient",
    "CreateOutcomeUnknown",
    "Created",
    "Endpoint",
    "Estimate",
    "FetchReport",
    "Fetcher",
    "MeasurementState",
    "Plan",
    "RetryPolicy",
    "Scheduler",
    "Slot",
    "estimate",
    "find_key",
    "load_campaign",
    "locked",
    "pending_bodies",
    "prepare",
    "require_key",
    "select",
    "states",
    "stop",
    "zone_problem",
]
