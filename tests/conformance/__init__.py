"""The conformance suite's cases (cases.py, *.k) and its expectation tables (unsupported.py)."""
