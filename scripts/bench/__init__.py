"""Benchmarks: the Rust core, SQL queries, persistence, and the four-engine comparison."""
