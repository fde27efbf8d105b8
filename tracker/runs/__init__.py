"""A topic's run: the window it searches, the search, fetching and saving what is new (ingest.py, the one
"store these PMIDs" path), the checks of what PubMed changed and of the query's health (watch.py), and the
run's record of counts, warnings and errors (ledger.py). sync.py puts them together for `tracker fetch`,
`tracker run`, imports, ad-hoc queries and the scheduler."""
