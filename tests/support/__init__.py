"""Test-only helpers (importable from the tests as ``support.*``: ``tests/`` is on the path of every test module)."""
