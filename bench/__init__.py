"""Benchmarks: each prints side-by-side ratios and writes bench/results/ (bench/README.md)."""
