"""The performance benchmark (`make bench`, `python -m bench`): docs/benchmark.md.

Kept out of the application's packages: nothing here is imported by the web app or the
workers in production.
"""
