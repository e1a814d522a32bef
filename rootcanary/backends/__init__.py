"""Measurement backends: ``local`` (dnspython), ``atlas`` (RIPE Atlas), ``proxy``.

Each backend turns a scenario into measurements and writes a campaign
directory (:mod:`rootcanary.campaign`) whose observations the classifier reads.
"""

BACKENDS = ("local", "atlas", "proxy")
