"""Symmetry as types: finite groups, their representations, and equivariant weight bases.

``groups`` builds the groups the language names (``C(n)``, ``D(n)``,
``S(n)``, products), ``reps`` their representations on wires, and
``basis`` the weights of linear maps that commute with two representations,
solved from ``ρ_out(g) W = W ρ_in(g)`` once per pair and cached.  NumPy
only: the checker may use all of it without importing JAX.
"""
