"""corpusmill.core."""
