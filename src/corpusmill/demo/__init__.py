"""corpusmill.demo: a deterministic, self-authored sample web crawl for demos, tests and benchmarks.

`write_demo_corpus` writes gzipped WARC files of a small invented crawl (good pages in several languages,
spam, duplicates, near duplicates and awkward edge cases) together with a `truth.jsonl` that labels every
response, so each pipeline stage can be checked against known answers without any network access.
"""

from corpusmill.demo.corpus import DemoCorpus, write_demo_corpus

__all__ = ["DemoCorpus", "write_demo_corpus"]
