"""From observations to resolver states: the classifier.

Library use (the demo and the testbed call it in-process)::

    from rootcanary.classify import classify, classify_files, Classifier

    result = classify(
        observations,               # Iterable[Observation]
        roles={"12345": "valid"},   # measurement -> role (or a RoleMap)
        zone="canary.test.",        # maps query names to roles (names.role_of)
        bucket_seconds=3600,
        keytags=(20326, 38696),     # default: every tag a sentinel role names
        event=None,                 # datetime: adds transitions and a funnel
    )
    for bucket in result.buckets:   # BucketState, sorted by vantage point, time
        bucket.vantage              # VantagePoint(platform, probe, resolver)
        bucket.validation           # "secure" | "insecure" | "bogus" | "unknown"
        bucket.evidence             # Evidence(ad_valid, ad_bogus, ede, responses)
        bucket.flags                # ("ad-on-bogus", ...), see rules.FLAGS
        bucket.trust_anchors        # TrustAnchorState(keytag, state, pattern)
        bucket.anchor_set           # AnchorSet(holds, lacks, undetermined)
        bucket.algorithms           # AlgorithmSupport(zone, state)
        bucket.upstream             # whoami: addresses our server saw
    result.transitions, result.funnel   # with event=

``classify_files(files, tally, ...)`` does the same over observation files
and raw RIPE Atlas results (the fast path, streaming); ``Classifier`` takes
observations (:meth:`~Classifier.add`) and raw results
(:meth:`~Classifier.add_atlas`) one at a time, for callers that stream.

Roles come, in this order, from the observation's own ``role``, the
``roles`` mapping (manifest first, then ``--role`` options; see
:class:`~rootcanary.classify.roles.RoleMap`) and the query name under
``zone``. States follow :mod:`rootcanary.classify.rules`: RFC 8509 §3 for
trust anchors, the valid/bogus pair for validation. The result is a tree of
frozen dataclasses (:mod:`rootcanary.classify.model`); the same input gives
the same result, whatever order it comes in.
"""

from rootcanary.classify.engine import Classifier, classify, classify_files
from rootcanary.classify.model import (
    ALGORITHM_STATES,
    FUNNEL_CLASSES,
    TA_STATES,
    VALIDATION_STATES,
    AlgorithmSupport,
    AnchorSet,
    BucketState,
    Classification,
    Evidence,
    Funnel,
    RoleEvidence,
    Transition,
    TrustAnchorState,
    VantagePoint,
)
from rootcanary.classify.roles import RoleMap, parse_role_options

__all__ = [
    "ALGORITHM_STATES",
    "FUNNEL_CLASSES",
    "TA_STATES",
    "VALIDATION_STATES",
    "AlgorithmSupport",
    "AnchorSet",
    "BucketState",
    "Classification",
    "Classifier",
    "Evidence",
    "Funnel",
    "RoleEvidence",
    "RoleMap",
    "Transition",
    "TrustAnchorState",
    "VantagePoint",
    "classify",
    "classify_files",
    "parse_role_options",
]
