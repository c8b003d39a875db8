"""corpusmill.pipelines."""
