"""Readers that turn collected data into observations.

- :mod:`.sources` expands files and campaign directories and tells each JSON
  value apart (observation or raw RIPE Atlas result);
- :mod:`.lines` streams JSON values out of JSON-lines and JSON-array files,
  gzipped or not, counting torn lines and truncated gzip streams;
- :mod:`.atlas` maps RIPE Atlas DNS results (``result`` and ``resultset``) to
  observations;
- :mod:`.wire` decodes DNS responses fast (header, question, OPT and EDE);
- :mod:`.synthetic` writes synthetic Atlas campaigns for benchmarks and tests.

Typical use::

    from rootcanary.observation import Tally
    from rootcanary.readers.sources import gather, read_observations

    inputs = gather([Path("campaigns/canary-atlas")])
    tally = Tally()
    for observation in read_observations(inputs.files, tally):
        ...
    print(tally.summary("responses"))
"""
