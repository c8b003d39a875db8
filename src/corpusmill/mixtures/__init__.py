"""Domain mixtures: account tokens per domain, plan sampling rates to a token budget, sample, report."""
