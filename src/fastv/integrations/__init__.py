"""Bridges from fastv to evaluation frameworks; each lives in its own optional subpackage."""
