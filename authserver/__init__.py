"""The DNSSEC-signed authoritative test-zone server.

Layers, pure logic first and I/O last:

``keys``      BIND-format key files in named slots (``KeyStore``)
``content``   the zones a scenario implies and their unsigned records
``sign``      RRSIGs (valid and each bogus kind), NSEC/NSEC3 chains
``zone``      the zones in memory and the lookup (``resolve``)
``render``    a lookup result as a response message
``engine``    wire in, wire out: parsing, caches, counters, the query log
``querylog``  the batched JSON-lines writer
``server``    sockets, the event loop, workers, signals (``serve``)
``build``     scenario -> signed hierarchy for a signing epoch
``anchor``    ``root_trust_anchor``, ``root_hints``, ``ds_records``
``export``    signed master files (``export_zones``)
"""
