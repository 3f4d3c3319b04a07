"""Sharded training on a mesh: the spec, the rules from the IR, equal losses, checkpoints across device counts, two processes.

Several devices need ``XLA_FLAGS=--xla_force_host_platform_device_count=2``
before JAX is imported, and this process has imported it already: the
multi-device parts run in a subprocess (:func:`_in_subprocess`), which
calls one of the ``worker_*`` functions below and prints its result as JSON.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT

from catnet.errors import CatnetError
from catnet.parallel import distributed, mesh

CNN = str(ROOT / "examples" / "digits_cnn.cat")
TRANSFORMER = str(ROOT / "examples" / "transformer.cat")
MLP = str(ROOT / "examples" / "digits_mlp.cat")
STEPS = 20


# -- the workers, run in subprocesses ------------------------------------------------------


@functools.cache
def _setup(file: str, seed: int = 0) -> tuple[Any, ...]:
    """A compiled model, its split state, adam's state and the steps of ``catnet.train.make_functions``.

    Cached: every run starts from the same state (JAX arrays are immutable),
    and compiling the transformer takes seconds.
    """
    import optax
    from flax import nnx

    import catnet
    from catnet import train

    model = catnet.compile(file, rngs=nnx.Rngs(seed))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    model.eval()
    eval_graphdef, _, _ = nnx.split(model, nnx.Param, ...)
    model.train()
    tx = optax.adam(1e-3)
    step, evaluate = train.make_functions(graphdef, eval_graphdef, tx, "xent")
    return model, params, rest, tx.init(params), step, evaluate


def _data(file: str, steps: int, batch: int) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    """Inputs, targets and ``steps`` batches of indices: random digits-shaped images, or counting tokens with next-token targets."""
    rng = np.random.default_rng(0)
    if file == TRANSFORMER:
        tokens = ((rng.integers(0, 256, (64, 1)) + np.arange(9)) % 256).astype(np.int32)
        inputs, target = (tokens[:, :-1],), tokens[:, 1:]
    else:
        inputs, target = (rng.normal(size=(64, 64)).astype(np.float32),), rng.integers(0, 10, 64).astype(np.int32)
    order = np.stack([rng.permutation(64)[:batch] for _ in range(steps)]).astype(np.int32)
    return inputs, target, order


def _train(file: str, spec: str | None, steps: int = STEPS, batch: int = 8) -> tuple[list[float], Any]:
    """The losses of ``steps`` training steps on one device (``spec`` None) or on the mesh ``spec``, and the final parameters."""
    import jax

    from catnet import parallel
    from catnet.parallel import placement

    model, params, rest, opt_state, step, _ = _setup(file)
    inputs, target, order = _data(file, steps, batch)
    if spec is None:
        inputs, target, order = jax.device_put((inputs, target, order))
    else:
        plan = placement.plan(parallel.build(parallel.parse(spec)), model, params, rest, opt_state)
        params, rest, opt_state = placement.put((params, rest, opt_state), plan.state())
        inputs, target = placement.put((inputs, target), plan.replicated)
        order = [plan.index(row) for row in order]
        step = placement.train_step(step, plan)
    losses = []
    for s in range(steps):
        params, rest, opt_state, loss = step(params, rest, opt_state, inputs, target, order[s])
        losses.append(float(loss))  # awaits the step, as catnet train does
    return losses, params


def worker_equal_losses(name: str) -> dict[str, Any]:
    """The losses of the model ``name`` on one device and on ``data=2`` and ``data=1,model=2``, and how its parameters are laid out."""
    import jax

    file = {"cnn": CNN, "transformer": TRANSFORMER}[name]
    out: dict[str, Any] = {"devices": jax.device_count(), "one": _train(file, None)[0], "data=2": _train(file, "data=2")[0]}
    losses, params = _train(file, "data=1,model=2")
    out["data=1,model=2"] = losses
    out["layouts"] = {
        ".".join(map(str, path)): [sorted(d.id for d in v.get_value().sharding.device_set), str(v.get_value().sharding.spec)]
        for path, v in _flat(params)
    }
    return out


def _flat(params: Any) -> list[tuple[tuple[Any, ...], Any]]:
    from flax import nnx

    return list(nnx.to_flat_state(params))


def worker_checkpoints(directory: str) -> dict[str, Any]:
    """Save on two devices, restore on one and train on; save on one, restore on two and train on.

    Each resumed run is compared, bit for bit, with the same steps run on
    the restoring mesh from the saved state held in memory (no checkpoint
    between): what a resume that changes the device count must reproduce.
    """
    import jax

    from catnet import checkpoints as ckpt
    from catnet import parallel
    from catnet.parallel import checkpoint, placement

    model, params, rest, opt_state, step_fn, _ = _setup(MLP)
    inputs, target, order = _data(MLP, 15, 8)
    two = parallel.build(parallel.parse("data=1,model=2"))
    one = parallel.build(parallel.parse("data=1"), devices=jax.devices()[:1])
    plans = {m: placement.plan(m, model, params, rest, opt_state) for m in (two, one)}

    def on(m: Any, state: Any) -> Any:
        plan = plans[m]
        return placement.put(state, plan.state())

    def run(m: Any, state: Any, steps: range) -> Any:
        plan = plans[m]
        step = placement.train_step(step_fn, plan)
        xs, y = placement.put((inputs, target), plan.replicated)
        p, r, o = state
        for s in steps:
            p, r, o, loss = step(p, r, o, xs, y, plan.index(order[s]))
            loss.block_until_ready()
        return p, r, o

    def host(state: Any) -> Any:
        return jax.tree.map(lambda x: np.asarray(jax.random.key_data(x)) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else np.asarray(x), state)

    def same(a: Any, b: Any) -> bool:
        return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(host(a)), jax.tree.leaves(host(b))))

    results: dict[str, Any] = {}
    saved = run(two, on(two, (params, rest, opt_state)), range(5))
    manager = ckpt.Orbax(Path(directory))
    names = ("params", "rest", "opt_state")
    manager.save(1, dict(zip(names, saved)), {"history": []}, {})
    manager.close()
    restored = checkpoint.restore(Path(directory) / "checkpoints", 1, dict(zip(names, saved)), dict(zip(names, plans[one].state())))
    restored = tuple(restored[k] for k in names)
    results["2to1_restored_equal"] = same(restored, saved)
    results["2to1_on_one_device"] = all(len(x.sharding.device_set) == 1 for x in jax.tree.leaves(restored))
    resumed = run(one, restored, range(5, 10))
    results["2to1_trained_equal"] = same(resumed, run(one, on(one, host_state(saved)), range(5, 10)))

    manager = ckpt.Orbax(Path(directory))
    manager.save(2, dict(zip(names, resumed)), {"history": []}, {})
    manager.close()
    # back onto two devices, through the Orbax class: a target laid out on the mesh restores onto it
    manager = ckpt.Orbax(Path(directory))
    got, _ = manager.restore(2, dict(zip(names, on(two, host_state(resumed)))))
    manager.close()
    back = tuple(got[k] for k in names)
    results["1to2_restored_equal"] = same(back, resumed)
    results["1to2_kernel_split"] = sorted(
        str(x.sharding.spec) for x in jax.tree.leaves(back[0]) if len(x.sharding.device_set) == 2 and "model" in str(x.sharding.spec)
    )
    results["1to2_trained_equal"] = same(run(two, back, range(10, 15)), run(two, on(two, host_state(resumed)), range(10, 15)))
    return results


def host_state(state: Any) -> Any:
    """A state's arrays copied to the host (typed keys kept as keys), to be laid out afresh."""
    import jax

    def one(x: Any) -> Any:
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(np.asarray(jax.random.key_data(x)), impl=jax.random.key_impl(x))
        return np.asarray(x)

    return jax.tree.map(one, state)


def worker_digits_mlp(epochs: int = 2) -> dict[str, Any]:
    """Train the digits MLP on every device of every process (``jax.distributed`` from the environment); its test accuracy."""
    distributed.initialize()
    import jax

    import catnet
    from catnet import parallel, train
    from catnet.parallel import placement

    model, params, rest, opt_state, step, evaluate = _setup(MLP)
    diagram = catnet.load(MLP).diagram("mlp")
    training, test, _ = train.load_datasets(diagram, "mlp", None, "digits", "auto", 0, 0.2)
    plan = placement.plan(parallel.build(parallel.parse(f"data={jax.device_count()}")), model, params, rest, opt_state)
    params, rest, opt_state = placement.put((params, rest, opt_state), plan.state())
    xs, y = placement.put((tuple(training.inputs), training.target), plan.replicated)
    test_xs, test_y = placement.put((tuple(test.inputs), test.target), plan.replicated)
    step, evaluate = placement.train_step(step, plan), placement.eval_step(evaluate, plan)
    batch = 64
    steps = len(training) // batch
    for epoch in range(1, epochs + 1):
        order = np.random.default_rng([0, epoch]).permutation(len(training))[: steps * batch]
        rows = order.reshape(steps, batch).astype(np.int32)
        for s in range(steps):
            params, rest, opt_state, loss = step(params, rest, opt_state, xs, y, plan.index(rows[s]))
            loss.block_until_ready()
    loss, accuracy = train.evaluate(evaluate, params, rest, test_xs, test_y, True)
    return {"process": jax.process_index(), "devices": jax.device_count(), "loss": loss, "accuracy": accuracy}


def _command(worker: str, *args: Any) -> list[str]:
    call = f"{worker}({', '.join(map(repr, args))})"
    code = f"import json, sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); import test_parallel as t; print('RESULT ' + json.dumps(t.{call}))"
    return [sys.executable, "-c", code]


def _result(stdout: str) -> Any:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, stdout[-2000:]
    return json.loads(lines[-1][len("RESULT "):])


def _xla_flags(devices: int) -> str:
    """This process's XLA flags (tests/conftest.py sets some) and ``devices`` host devices."""
    return f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()


def _in_subprocess(worker: str, *args: Any, devices: int = 2, env: dict[str, str] | None = None) -> Any:
    """``worker(*args)`` in a fresh Python with ``devices`` host devices; its JSON result."""
    environ = {**os.environ, "XLA_FLAGS": _xla_flags(devices), "JAX_PLATFORMS": "cpu", **(env or {})}
    done = subprocess.run(_command(worker, *args), check=False, capture_output=True, text=True, env=environ, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return _result(done.stdout)


# -- the mesh spec ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("data=2", (2, 1)), ("data=1,model=2", (1, 2)), (" model = 4 , data = 2 ", (2, 4)), ("data=8", (8, 1))],
)
def test_mesh_specs_parse(text: str, expected: tuple[int, int]) -> None:
    spec = mesh.parse(text)
    assert (spec.data, spec.model) == expected
    assert spec.devices == expected[0] * expected[1]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "--mesh is empty"),
        ("data", "--mesh must be a list of AXIS=SIZE"),
        ("data=two", "--mesh data must be a whole number, not 'two'"),
        ("data=0", "from 1 to 65536, not 0"),
        ("data=2,data=2", "names `data` twice"),
        ("data=2,pipe=2", "no axis `pipe`"),
        ("model=2", "does not say how many devices split the batch"),
        ("data=2;model=2", "must be a whole number"),
    ],
)
def test_bad_mesh_specs_are_e0703_naming_the_option(text: str, words: str) -> None:
    with pytest.raises(CatnetError) as e:
        mesh.parse(text)
    assert e.value.code == "E0703"
    assert words in e.value.message
    assert "--mesh" in e.value.message and "--mesh data=2" in (e.value.help or "")


def test_a_mesh_larger_than_the_devices_is_e0703_with_the_count() -> None:
    import jax

    with pytest.raises(CatnetError) as e:
        mesh.build(mesh.parse(f"data={jax.device_count() + 1}"))
    assert e.value.code == "E0703"
    assert f"JAX sees {jax.device_count()}" in e.value.message
    assert "xla_force_host_platform_device_count" in (e.value.help or "")


def test_a_mesh_of_every_device_has_the_data_and_model_axes() -> None:
    import jax

    built = mesh.build(mesh.parse(f"data={jax.device_count()}"))
    assert dict(built.shape) == {"data": jax.device_count(), "model": 1}


def test_the_batch_must_split_evenly_over_data() -> None:
    mesh.require_batch(mesh.parse("data=4"), 64)
    with pytest.raises(CatnetError) as e:
        mesh.require_batch(mesh.parse("data=4"), 66)
    assert e.value.code == "E0703" and "--batch-size 66" in e.value.message and "--batch-size 64" in (e.value.help or "")


def test_parsing_a_spec_imports_no_jax() -> None:
    code = "import sys; from catnet.parallel import parse, distributed; parse('data=2'); distributed.settings({}); print('jax' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


# -- the sharding rules ----------------------------------------------------------------------


@functools.cache
def _compiled(file: str) -> tuple[Any, Any]:
    """A compiled model's shapes and its parameters' (``nnx.eval_shape``: the rules read shapes only)."""
    from flax import nnx

    import catnet

    model = nnx.eval_shape(lambda: catnet.compile(file, rngs=nnx.Rngs(0)))
    return model, nnx.split(model, nnx.Param, ...)[1]


def _specs(file: str, model_size: int, **kw: Any) -> dict[str, tuple[Any, ...]]:
    from flax import nnx

    from catnet.parallel import rules

    model, params = _compiled(file)
    specs = rules.partition_specs(model, params, model_size, **kw)
    axes = rules.logical_axes(model, params)
    import jax

    flat_axes = jax.tree.leaves(axes, is_leaf=lambda t: isinstance(t, tuple))
    flat_specs = jax.tree.leaves(specs, is_leaf=lambda s: isinstance(s, jax.sharding.PartitionSpec))
    return {
        ".".join(map(str, path)): (a, tuple(s))
        for (path, _), a, s in zip(nnx.to_flat_state(params), flat_axes, flat_specs)
    }


def test_transformer_axes_come_from_the_generators_and_wire_types() -> None:
    got = _specs(TRANSFORMER, 2)
    assert got["embed.embedding"] == (("vocab", "embed"), ("model", None))
    # the up-projection R[64] -> R[256] splits its outputs, the down-projection after it its inputs
    assert got["block.mlp.dense.0.kernel"] == (("layers", "embed", "mlp"), (None, None, "model"))
    assert got["block.mlp.dense.1.kernel"] == (("layers", "mlp", "embed"), (None, "model", None))
    assert got["block.attention.query.kernel"] == (("layers", "embed", "heads", "kv"), (None, None, "model", None))
    assert got["block.attention.out.kernel"] == (("layers", "heads", "kv", "embed"), (None, "model", None, None))
    # norms and small biases stay whole
    assert got["layernorm.scale"][1] == (None,)
    assert got["block.attention.query.bias"][1] == (None, None, None)


def test_cnn_kernels_split_by_channels_and_small_ones_stay_whole() -> None:
    got = _specs(CNN, 2)
    assert got["stage2.conv.kernel"] == (("window", "window", "embed", "mlp"), (None, None, None, "model"))
    assert got["classifier.dense.0.kernel"] == (("mlp", "embed"), ("model", None))
    assert got["stage1.conv.kernel"][1] == (None,) * 4  # 144 weights: below the size threshold


def test_one_model_device_or_a_high_threshold_replicates_everything() -> None:
    for got in (_specs(TRANSFORMER, 1), _specs(TRANSFORMER, 2, min_elements=10**9)):
        assert all(all(axis is None for axis in spec) for _, spec in got.values())


def test_an_axis_the_model_size_does_not_divide_falls_to_the_next_rule() -> None:
    got = _specs(TRANSFORMER, 3)  # 3 divides none of 256, 64, 4, 16
    assert all(all(axis is None for axis in spec) for _, spec in got.values())
    got = _specs(TRANSFORMER, 8)  # 8 divides the vocabulary and the widths, not the 4 heads: per-head features then
    assert got["block.attention.query.kernel"][1] == (None, None, None, "model")


@pytest.mark.parametrize("file", ["siamese.cat", "zoo/gpt2.cat", "zoo/resnet18.cat"])
def test_every_parameter_gets_axes_of_its_rank(file: str) -> None:
    import jax

    from catnet.parallel import rules

    model, params = _compiled(str(ROOT / "examples" / file))
    axes = jax.tree.leaves(rules.logical_axes(model, params), is_leaf=lambda t: isinstance(t, tuple))
    arrays = jax.tree.leaves(params)
    assert [len(a) for a in axes] == [x.ndim for x in arrays]
    assert any("model" in spec for spec in jax.tree.leaves(_specs_tree(model, params), is_leaf=_is_spec))


def _is_spec(x: Any) -> bool:
    import jax

    return isinstance(x, jax.sharding.PartitionSpec)


def _specs_tree(model: Any, params: Any) -> Any:
    from catnet.parallel import rules

    return rules.partition_specs(model, params, 2)


def test_optimizer_state_follows_the_parameters() -> None:
    import jax
    import optax
    from flax import nnx

    from catnet.parallel import placement

    model, params = _compiled(TRANSFORMER)
    rest = nnx.split(model, nnx.Param, ...)[2]
    built = mesh.build(mesh.parse(f"data={jax.device_count()}"))
    opt_state = jax.eval_shape(optax.adam(1e-3).init, params)
    plan = placement.plan(built, model, params, rest, opt_state)
    adam = plan.opt_state[0]
    assert jax.tree.structure(adam.mu) == jax.tree.structure(plan.params)
    assert jax.tree.leaves(adam.mu) == jax.tree.leaves(plan.params)
    assert adam.count == plan.replicated
    # clipping, weight decay and accumulation wrap the moments; the accumulated gradients are shaped like them too
    tx = optax.MultiSteps(optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3)), every_k_schedule=2)
    plan = placement.plan(built, model, params, rest, jax.eval_shape(tx.init, params))
    assert jax.tree.leaves(plan.opt_state.acc_grads) == jax.tree.leaves(plan.params)
    assert jax.tree.leaves(plan.opt_state.inner_opt_state[1][0].nu) == jax.tree.leaves(plan.params)
    assert plan.opt_state.mini_step == plan.replicated


# -- several devices --------------------------------------------------------------------------


@functools.cache
def _equal_losses(name: str) -> dict[str, Any]:
    return _in_subprocess("worker_equal_losses", name)


#: The transformer compiles three times over in its subprocess: tens of seconds.
MODELS = ["cnn", pytest.param("transformer", marks=pytest.mark.slow)]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("spec", ["data=2", "data=1,model=2"])
def test_a_mesh_gives_the_loss_curve_of_one_device(model: str, spec: str) -> None:
    got = _equal_losses(model)
    assert got["devices"] == 2
    one, sharded = got["one"], got[spec]
    assert len(one) == len(sharded) == STEPS
    np.testing.assert_allclose(sharded, one, rtol=0, atol=1e-5)
    assert one[-1] < one[0]


@pytest.mark.parametrize(
    ("model", "kernel"),
    [("cnn", "stage2.conv.kernel"), pytest.param("transformer", "block.mlp.dense.0.kernel", marks=pytest.mark.slow)],
)
def test_model_2_really_splits_kernels_over_both_devices(model: str, kernel: str) -> None:
    devices, spec = _equal_losses(model)["layouts"][kernel]
    assert devices == [0, 1] and "model" in spec


def test_a_checkpoint_moves_between_device_counts_bit_for_bit(tmp_path: Path) -> None:
    got = _in_subprocess("worker_checkpoints", str(tmp_path))
    assert got["2to1_restored_equal"] and got["2to1_on_one_device"] and got["2to1_trained_equal"], got
    assert got["1to2_restored_equal"] and got["1to2_kernel_split"] and got["1to2_trained_equal"], got


# -- several processes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({"JAX_COORDINATOR_ADDRESS": "localhost:1234"}, "but not JAX_NUM_PROCESSES, JAX_PROCESS_ID"),
        ({"JAX_COORDINATOR_ADDRESS": "localhost", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0"}, "must be host:port"),
        ({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"}, "JAX_NUM_PROCESSES must be a whole number"),
        ({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"}, "from 0 to 1, not 2"),
    ],
)
def test_a_half_set_environment_is_e0703_naming_the_variable(environ: dict[str, str], words: str) -> None:
    with pytest.raises(CatnetError) as e:
        distributed.settings(environ)
    assert e.value.code == "E0703" and words in e.value.message


def test_no_environment_is_one_process() -> None:
    assert distributed.settings({}) is None
    assert distributed.settings({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"}) == distributed.Settings("h:1", 2, 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_processes_train_the_digits_mlp_to_the_accuracy_of_one() -> None:
    single = _in_subprocess("worker_digits_mlp", devices=1)
    address = f"127.0.0.1:{_free_port()}"
    base = {**os.environ, "XLA_FLAGS": _xla_flags(1), "JAX_PLATFORMS": "cpu"}
    procs = [
        subprocess.Popen(
            _command("worker_digits_mlp"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**base, "JAX_COORDINATOR_ADDRESS": address, "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(i)},
        )
        for i in range(2)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        results.append(_result(out))
    assert [r["process"] for r in results] == [0, 1]
    assert all(r["devices"] == 2 for r in results) and single["devices"] == 1
    assert single["accuracy"] > 0.7
    for r in results:
        assert r["accuracy"] == pytest.approx(single["accuracy"], abs=1e-9)
        assert r["loss"] == pytest.approx(single["loss"], rel=1e-5)
