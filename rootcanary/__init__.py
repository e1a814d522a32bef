"""rootcanary: probe DNS resolvers for DNSSEC validation and root trust anchors."""

__version__ = "0.1.0"
