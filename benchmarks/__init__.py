"""Benchmarks of cloudify-upgrade-plugin (run with `python -m benchmarks`; see README.md).

Each benchmark is a module of this package whose name does not start with `_` and which
defines `main(argv) -> int`; `benchmarks.__main__` finds them, so adding one is adding a
file.  Results worth keeping are recorded in `benchmarks/README.md`.
"""
