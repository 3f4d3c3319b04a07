"""The ``flows`` family: invertible generators with log-determinants (being written)."""
