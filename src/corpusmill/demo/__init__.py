"""corpusmill.demo: a deterministic, self-authored sample web crawl for demos, tests and benchmarks.

`write_demo_corpus` writes gzipped WARC files of a small invented crawl (good pages in several languages,
spam, thin content-farm filler, duplicates, near duplicates and awkward edge cases) together with a
`truth.jsonl` that labels every response (kind, language, topic and taxonomy domain), so each pipeline stage,
the classifiers and the mix can be checked against known answers without any network access.
"""

from corpusmill.demo.corpus import DemoCorpus, write_demo_corpus

__all__ = ["DemoCorpus", "write_demo_corpus"]
