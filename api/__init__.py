"""The ways in: the `ptm` CLI and the FastAPI app, thin adapters over matcher.engine and indexer."""
