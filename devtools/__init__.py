"""Development tooling: local servers, process helpers for demos, tests and benchmarks.

The running system never imports this package (``tests/unit/test_layers.py`` checks).
"""
