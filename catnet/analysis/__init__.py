"""The geometry of data and of what networks learn (docs/analysis.md).

``intrinsic`` estimates the intrinsic dimension of point clouds (TwoNN,
Levina–Bickel MLE); ``manifolds`` generates synthetic manifolds of known
dimension and curvature; ``curvature`` estimates a data manifold's
curvature; ``hessian`` measures the curvature of a loss landscape (top
eigenvalues, trace, slices); ``activations`` collects the activations of
named wires of a compiled model from its one jitted forward pass;
``report`` runs all of it on a model and arrays (the Python API of the
command), ``plots`` draws its figures, and ``cli`` is ``catnet analyze``.
"""
