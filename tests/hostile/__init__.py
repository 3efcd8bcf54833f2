"""Hostile-input property tests (Hypothesis): every input gets a defined answer."""
