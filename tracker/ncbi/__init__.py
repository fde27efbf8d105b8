"""Everything that speaks NCBI's language: the E-utilities client (etiquette, rate limit, retries, ESearch and
EFetch) and its prefetching, the PubMed XML parser and its record framer, MEDLINE files, PubMed's notices
(retractions, errata), trial registry numbers and the evidence tiers publication types name.

This package never imports the store: records come in, `Paper` values go out.
"""
