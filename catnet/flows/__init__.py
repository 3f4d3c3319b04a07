"""Normalizing flows: likelihoods and samples of isomorphisms (see ``docs/language.md`` §11.10)."""
