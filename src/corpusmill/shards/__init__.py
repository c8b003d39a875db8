"""corpusmill.shards."""
