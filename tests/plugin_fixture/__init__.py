"""A tiny third-party-style problem package used by tests/test_problems.py."""
