"""The ``bundles`` family: generators on trivialized bundles (being written)."""
