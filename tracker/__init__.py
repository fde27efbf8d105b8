"""Track PubMed topics into SQLite: incremental E-utilities sync, digests, e-mail and export."""

__version__ = "0.1.0"
