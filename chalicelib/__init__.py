"""Clampdown's runtime: everything the deployed Lambda runs (and the CLI reuses)."""
