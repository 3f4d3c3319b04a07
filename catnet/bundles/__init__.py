"""Fiber bundles at run time: data, charts, the bundle objective, metrics and sampling (``docs/bundles.md``)."""
