"""Using a trained model: the commands that read a run directory of ``catnet train``.

* :mod:`catnet.use.evaluate` -- ``catnet eval``: the run's test metrics,
  recomputed from its verified checkpoint exactly as training
  computed them (the same split, batches and summation order);
* :mod:`catnet.use.predict` -- ``catnet predict``: the model's outputs on
  the inputs of an ``.npz`` file, in evaluation mode, written to an ``.npz``;
* :mod:`catnet.use.export` -- ``catnet export``: the evaluation-mode forward
  function with the trained weights, serialized by ``jax.export`` with a
  symbolic batch size;
* :mod:`catnet.use.trained` -- what the three share: the run directory, the
  settings its checkpoint recorded, the morphism it trained, the restored
  model, and the checks of the options and the output path.

Nothing here imports JAX at module level, so every command's ``--help`` and
every check of its options run without it.
"""
