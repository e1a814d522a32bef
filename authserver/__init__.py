"""The DNSSEC-signed authoritative test-zone server."""
