"""Benchmark helpers: a dense research-style reference network and timing utilities."""
