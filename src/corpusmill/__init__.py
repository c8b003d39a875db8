"""corpusmill: from raw web crawls to training-ready token shards."""

__version__ = "0.1.0"
