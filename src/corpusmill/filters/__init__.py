"""corpusmill.filters."""
