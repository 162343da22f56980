"""A tiny third-party-style problem package used by tests/islands/problems/test_problems.py."""
