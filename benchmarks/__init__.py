"""Reproducible benchmarks: `make bench`. Never collected as tests."""
