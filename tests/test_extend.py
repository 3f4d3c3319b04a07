"""Custom generators from Python (``catnet.extend``): the plugins in
tests/plugins/ used by .cat files through the command line and the Python
API, and every way a plugin can be wrong, each a located diagnostic."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import catnet
from catnet import CatnetError, extend
from catnet.extend import Arg, Box, Ob, RegistrationError, Ty
from catnet.library import GENERATORS
from catnet.summary import total_params
from conftest import ROOT, golden

HERE = Path(__file__).resolve().parent
PLUGINS = HERE / "plugins"
GOLDEN = HERE / "golden" / "plugins"

SWIGLU_NET = """\
object Image  = R[64]
object Hidden = R[32]
object Logits = R[10]

morphism block : Hidden -> Hidden = swiglu(hidden=48) ; layernorm
morphism net   : Image -> Logits = (dense : Image -> Hidden) ; block ; dense
"""
#: dense 64·32+32, swiglu 3·32·48, layernorm 2·32, dense 32·10+10
SWIGLU_NET_PARAMS = 2080 + 4608 + 64 + 330


def cli(*argv: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m catnet ARGV`` with this tree's catnet and tests/plugins importable."""
    base = {k: v for k, v in os.environ.items() if k not in (extend.ENV_VAR, "PYTHONPATH")}
    base["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(PLUGINS)])
    return subprocess.run([sys.executable, "-m", "catnet", *argv], capture_output=True, text=True, cwd=cwd,
                          env={**base, **(env or {})}, timeout=timeout)


@pytest.fixture
def net(tmp_path: Path) -> Path:
    path = tmp_path / "net.cat"
    path.write_text(SWIGLU_NET, encoding="utf-8")
    return path


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], ModuleType]]:
    """Import (or import again) a plugin of tests/plugins; its generators are removed afterwards."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    before = set(extend.plugins())

    def load(name: str) -> ModuleType:
        module = sys.modules.get(name)
        return importlib.reload(module) if module is not None else importlib.import_module(name)

    yield load
    for name in set(extend.plugins()) - before:
        extend.unregister(name)


# -- the command line sees a plugin --------------------------------------------------------


def test_check_summary_render_see_the_plugin(net: Path) -> None:
    plugin = str(PLUGINS / "swiglu.py")
    check = cli("check", str(net), "--plugin", plugin)
    assert check.returncode == 0, check.stderr
    assert "block : Hidden -> Hidden" in check.stdout and "net   : Image -> Logits" in check.stdout
    summary = cli("--plugin", plugin, "summary", str(net))
    assert summary.returncode == 0, summary.stderr
    assert "block.swiglu     swiglu     Hidden -> Hidden   4,608" in summary.stdout
    assert summary.stdout.splitlines()[-1].split()[-1] == f"{SWIGLU_NET_PARAMS:,}"
    render = cli("render", str(net), "--format", "dot", "--depth", "2", "--plugin", plugin)
    assert render.returncode == 0, render.stderr
    assert "swiglu<BR/>" in render.stdout and "hidden=48" in render.stdout


def test_the_ways_to_name_a_plugin(net: Path) -> None:
    file = str(PLUGINS / "swiglu.py")
    for argv, env in [
        (["--plugin", "swiglu", "check", str(net)], None),  # a module name (on PYTHONPATH)
        (["check", "--plugin=swiglu", str(net)], None),
        (["--plugin", file, "check", str(net)], None),  # a file
        (["check", str(net)], {extend.ENV_VAR: f" {file} , "}),  # the environment, commas and blanks
    ]:
        proc = cli(*argv, env=env)
        assert proc.returncode == 0, (argv, env, proc.stderr)
        assert "ok" in proc.stdout
    without = cli("check", str(net))
    assert without.returncode == 1 and "error[E0201]: unknown morphism `swiglu`" in without.stderr


def test_check_with_a_plugin_does_not_import_jax(net: Path, tmp_path: Path) -> None:
    flow = tmp_path / "flow.cat"
    flow.write_text("morphism flow : R[8] -> R[8] = affine_norm ; inv(affine_norm)\n", encoding="utf-8")
    code = ("import sys, affine_norm; affine_norm.register(); from catnet.cli import main; "
            f"rc = main(['--plugin', 'swiglu', 'check', '-q', {str(net)!r}, {str(flow)!r}]); "
            "print(rc, 'jax' in sys.modules, 'flax' in sys.modules, 'affine_norm_jax' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != extend.ENV_VAR}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(PLUGINS)])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert proc.stdout.split() == ["0", "False", "False", "False"], proc.stderr


def test_train_with_a_plugin(net: Path, tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.json"
    proc = cli("--plugin", str(PLUGINS / "swiglu.py"), "train", str(net), "--data", "digits", "--epochs", "2",
               "--seed", "0", "--quiet", "--out", str(tmp_path / "run"), "--metrics-out", str(metrics), timeout=300)
    assert proc.returncode == 0, proc.stderr
    m = json.loads(metrics.read_text())
    assert m["epochs"] == 2 and m["test_accuracy"] > 0.5  # ten classes: chance is 0.1


def test_installed_entry_points_load(tmp_path: Path, net: Path) -> None:
    """A package declares its plugins in the group ``catnet.generators``: a module, or a function to call."""
    dist = tmp_path / "catnet_test_plugins-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: catnet-test-plugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[catnet.generators]\nswiglu = swiglu\naffine_norm = affine_norm:register\n")
    flow = tmp_path / "flow.cat"
    flow.write_text("object V = R[32]\nmorphism flow : V -> V = affine_norm ; reverse ; affine_norm\n", encoding="utf-8")
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(PLUGINS), str(tmp_path)])}
    proc = cli("check", str(net), str(flow), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "flow : V -> V   (R[32] -> R[32])  [iso]" in proc.stdout
    (dist / "entry_points.txt").write_text("[catnet.generators]\nbroken = no_such_catnet_plugin:register\n")
    proc = cli("check", str(net), env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error[E0901]: cannot load the plugin `no_such_catnet_plugin:register` "
                                  "(entry point `broken` of catnet-test-plugins)")


# -- the Python API ----------------------------------------------------------------------------


def test_compile_equals_hand_written_flax(use: Callable[[str], ModuleType]) -> None:
    import jax
    from flax import nnx

    use("swiglu")
    model = catnet.compile(SWIGLU_NET, "net", rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).normal(size=(5, 64)).astype(np.float32)
    block = model.block
    h = model.dense[0](x)
    gate_up = h @ block.swiglu.gate_up.kernel[...]
    gate, up = gate_up[:, :48], gate_up[:, 48:]
    h = (jax.nn.silu(gate) * up) @ block.swiglu.down.kernel[...]
    want = model.dense[1](block.layernorm(h))
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(want), rtol=1e-5, atol=1e-5)
    assert total_params(catnet.loads(SWIGLU_NET).diagram("net")) == SWIGLU_NET_PARAMS
    assert sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param))) == SWIGLU_NET_PARAMS


@settings(max_examples=20, deadline=None)
@given(d=st.integers(1, 24), hidden=st.integers(1, 24), bias=st.booleans(), lead=st.lists(st.integers(1, 4), max_size=2))
def test_count_rule_equals_the_lowered_parameters(d: int, hidden: int, bias: bool, lead: list[int]) -> None:
    import jax
    from flax import nnx

    shape = ", ".join(str(n) for n in [*lead, d])
    text = f"morphism f : R[{shape}] -> R[{shape}] = swiglu(hidden={hidden}, bias={str(bias).lower()})\n"
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(PLUGINS))
        module = sys.modules.get("swiglu")
        importlib.reload(module) if module is not None else importlib.import_module("swiglu")
        try:
            diagram = catnet.loads(text).diagram("f")
            # Abstract construction: the parameters' shapes without drawing them.
            model = nnx.eval_shape(lambda: catnet.compile(diagram, rngs=nnx.Rngs(0)))
            real = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
            assert total_params(diagram) == real == 3 * d * hidden + (2 * hidden + d if bias else 0)
        finally:
            extend.unregister("swiglu")


def test_a_lowering_module_loads_when_a_model_is_built_and_inverts(use: Callable[[str], ModuleType]) -> None:
    import jax.numpy as jnp
    from flax import nnx

    sys.modules.pop("affine_norm_jax", None)
    use("affine_norm").register()
    module = catnet.loads("object V = R[4]\nmorphism g : V -> V = affine_norm ; reverse ; affine_norm\n"
                          "shared G = g\nmorphism there_and_back : V -> V = G ; inv(G)\n")
    assert "affine_norm_jax" not in sys.modules  # checking needs only the signature half
    assert total_params(module.diagram("g")) == 16
    model = catnet.compile(module, "there_and_back", rngs=nnx.Rngs(0))
    assert "affine_norm_jax" in sys.modules
    first, second = model.G.g.affine_norm
    first.log_scale[...] = jnp.arange(4.0) / 4
    second.shift[...] = jnp.arange(4.0)
    x = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(model(x)), x, atol=1e-5)
    forward = catnet.compile(module, "g", rngs=nnx.Rngs(0))
    forward.affine_norm[0].log_scale[...] = jnp.arange(4.0) / 4
    forward.affine_norm[1].shift[...] = jnp.arange(4.0)
    want = (x * np.exp(np.arange(4.0) / 4))[:, ::-1] + np.arange(4.0)
    np.testing.assert_allclose(np.asarray(forward(x)), want, rtol=1e-5)


def test_registering_after_the_lowering_loaded_reaches_it(use: Callable[[str], ModuleType]) -> None:
    from catnet.lower import OPS

    use("swiglu")
    assert GENERATORS["swiglu"].family == "swiglu" and extend.plugins()["swiglu"] == "swiglu"
    assert OPS["swiglu"].make is not None and OPS["swiglu"].inverse is None
    extend.unregister("swiglu")
    assert "swiglu" not in GENERATORS and "swiglu" not in OPS


def test_replace_a_plugin_generator(use: Callable[[str], ModuleType]) -> None:
    use("swiglu")
    g = extend.generator("swiglu", lambda ctx, dom, args: dom, replace=True, doc="a stand-in")
    assert GENERATORS["swiglu"] is g and g.doc == "a stand-in" and not g.params
    with pytest.raises(RegistrationError, match="only a plugin's generator can be replaced"):
        extend.generator("dense", lambda ctx, dom, args: dom, replace=True)
    with pytest.raises(RegistrationError, match="only a plugin's generator can be removed"):
        extend.unregister("relu")


def test_a_random_generator_gets_keys_in_training_only(use: Callable[[str], ModuleType]) -> None:
    import jax
    from flax import nnx

    def jitter(module: None, wires: list[jax.Array], box: Box, ctx: Any) -> list[jax.Array]:
        (x,) = wires
        return [x + jax.random.normal(ctx.key(), x.shape) if ctx.train else x]

    extend.generator("jitter", lambda ctx, dom, args: dom, apply=jitter, random=True, plugin="tests")
    model = catnet.compile("morphism f : R[3] -> R[3] = jitter ; jitter\n", rngs=nnx.Rngs(0))
    x = np.zeros((2, 3), np.float32)
    first, second = np.asarray(model(x)), np.asarray(model(x))
    assert first.std() > 0.1 and not np.allclose(first, second)
    model.eval()
    np.testing.assert_array_equal(np.asarray(model(x)), x)


def test_a_cat_file_cannot_run_python(tmp_path: Path) -> None:
    (tmp_path / "evil.py").write_text("from catnet import extend\nextend.generator('evil', lambda c, d, a: d)\n")
    (tmp_path / "main.cat").write_text('import "evil.py"\nmorphism f : R[4] -> R[4] = evil\n')
    with pytest.raises(CatnetError):
        catnet.load(tmp_path / "main.cat")
    assert "evil" not in GENERATORS


def test_the_worked_example_of_the_docs(use: Callable[[str], ModuleType]) -> None:
    """docs/extending.md shows tests/plugins/swiglu.py (and affine_norm's log-determinants) verbatim,
    and its .cat examples check with it."""
    doc = (ROOT / "docs" / "extending.md").read_text(encoding="utf-8")
    python = [block.split("\n", 1)[1] for block in doc.split("```")[1::2] if block.startswith("python\n")]
    assert python[0] == (PLUGINS / "swiglu.py").read_text(encoding="utf-8")
    # The log-determinants of affine_norm, as the plugin has them.
    continued = next(block for block in python if block.startswith("# affine_norm_jax.py, continued"))
    jax_half = (PLUGINS / "affine_norm_jax.py").read_text(encoding="utf-8")
    for part in continued.split("\n\n\n")[1:]:
        assert part.strip() in jax_half
    use("swiglu")
    examples = [block.split("\n", 1)[1] for block in doc.split("```")[1::2] if block.startswith("cat\n")]
    assert examples
    for text in examples:
        assert total_params(catnet.loads(text).diagram()) == SWIGLU_NET_PARAMS


# -- registration mistakes: RegistrationError to the caller -----------------------------------


def _same(ctx: Any, dom: Ty, args: dict[str, Any]) -> Ty:
    return dom


def _count(box: Box, size: Callable[[Any], int]) -> int:
    return 1


def _make(box: Box, rngs: Any) -> None:
    return None


def _apply(module: Any, wires: list[Any], box: Box, ctx: Any) -> list[Any]:
    return wires


def _apply_ld(module: Any, wires: list[Any], box: Box, ctx: Any) -> tuple[list[Any], Any]:
    import jax.numpy as jnp

    return wires, jnp.zeros((ctx.batch,))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "relu"}, "a generator named `relu` exists already"),
        ({"name": "repeat"}, "`repeat` is a keyword"),
        ({"name": "no way"}, "must be an identifier"),
        ({"name": 3}, "must be a str"),
        ({"rule": "dense"}, "`rule` of `g` must be a function"),
        ({"rule": lambda ctx, dom: dom}, r"must take \(ctx, dom, args\)"),
        ({"args": [("hidden", "int")]}, "must hold catnet.extend.Arg values"),
        ({"args": Arg("hidden", "int")}, "must be a sequence"),
        ({"args": [Arg("hidden", "integer")]}, "has kind 'integer'"),
        ({"args": [Arg("hidden", "int", 0, low=1)]}, "the default 0 is not a value of kind int within its bounds"),
        ({"args": [Arg("hidden", "int", 8, required=True)]}, "is required, so it has no default"),
        ({"args": [Arg("mode", "str", "c", choices=("a", "b"))]}, "within its choices"),
        ({"args": [Arg("flag", "bool", 1)]}, "not a value of kind bool"),
        ({"args": [Arg("n", "int"), Arg("n", "float")]}, "names the argument `n` twice"),
        ({"arity": -1}, "must be a number of wires"),
        ({"iso": "yes"}, "`iso=` of `g` must be True or False"),
        ({"count": _count, "apply": _apply}, r"has parameters \(a count rule\), so it needs `make"),
        ({"count": _count, "make": _make}, "has `make` or `inverse` but no `apply`"),
        ({"make": _make, "apply": _apply}, "has `make` but no count rule"),
        ({"iso": True, "apply": _apply}, "is an isomorphism, so it needs `inverse"),
        ({"inverse": _apply, "apply": _apply}, "has `inverse` but is not registered with `iso=True`"),
        ({"apply": lambda wires: wires}, r"must take \(module, wires, box, ctx\)"),
        ({"apply": _apply, "lowering": "pkg.mod"}, "not both"),
        ({"lowering": "pkg/mod.py"}, "must name `package.module` or `package.module:object`"),
        ({"apply": _apply, "random": "sometimes"}, "must be True, False or a function of the box"),
    ],
)
def test_registration_mistakes(kwargs: dict[str, object], message: str) -> None:
    call = {"name": "g", "rule": _same, **kwargs}
    name, rule = call.pop("name"), call.pop("rule")
    before = dict(GENERATORS)
    with pytest.raises(RegistrationError, match=message):
        extend.generator(name, rule, **call)  # type: ignore[arg-type]
    assert GENERATORS == before


@pytest.mark.parametrize(
    ("cod", "message"),
    [
        (lambda dom: dom.obs, "returned tuple, not a `Ty`"),
        (lambda dom: Ty(("R[4]",)), "returned a `Ty` holding str, not `Ob` wires"),
        (lambda dom: Ty((Ob("Q", (4,)),)), "returned a wire of base 'Q'"),
        (lambda dom: Ty((Ob("R", (4.0,)),)), "the size 4.0, which is not a whole number or a size symbol"),
        (lambda dom: Ty((Ob("R", (True,)),)), "the size True"),
        (lambda dom: dom @ dom, r"returned 2 wire\(s\), but it was registered with coarity=1"),
    ],
)
def test_what_a_shape_rule_returns_is_checked(cod: Callable[[Ty], object], message: str,
                                              use: Callable[[str], ModuleType]) -> None:
    extend.generator("odd", lambda ctx, dom, args: cod(dom), coarity=1, plugin="tests")
    with pytest.raises(CatnetError, match=message) as info:
        catnet.loads("morphism f : R[4] -> R[4] = odd\n")
    assert info.value.code == "E0903" and info.value.span is not None and info.value.span.column == 29


def test_a_refused_plugin_leaves_nothing_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # a file plugin puts its folder there
    with pytest.raises(CatnetError) as info:
        extend.load_plugin(str(PLUGINS / "duplicate.py"))
    assert info.value.code == "E0902" and "`relu` exists already (core)" in info.value.message
    assert "first_of_two" not in GENERATORS and "duplicate" not in sys.modules


# -- isomorphisms with log-determinants ---------------------------------------------------------


def test_a_plugin_log_det_equals_the_jacobian(use: Callable[[str], ModuleType]) -> None:
    """``affine_norm ; reverse ; affine_norm``: the plugin's log-determinants against autodiff's, per example."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    use("affine_norm").register()
    model = catnet.compile("object V = R[3, 4]\nmorphism g : V -> V = affine_norm ; reverse ; affine_norm\n",
                           rngs=nnx.Rngs(0))
    rng = np.random.default_rng(2)
    for layer in model.affine_norm:  # away from the identity, where every log-det is 0
        layer.log_scale[...] = jnp.asarray(rng.normal(size=4) * 0.5, jnp.float32)
        layer.shift[...] = jnp.asarray(rng.normal(size=4), jnp.float32)
    x = rng.normal(size=(5, 3, 4)).astype(np.float32)
    y, ld = model.forward_log_det(x)
    assert ld.shape == (5,)
    np.testing.assert_allclose(np.asarray(y), np.asarray(model(x)), rtol=1e-6)
    for i in range(5):
        jac = jax.jacfwd(lambda v: model(v[None])[0])(jnp.asarray(x[i])).reshape(12, 12)
        sign, logabs = jnp.linalg.slogdet(jac)
        assert float(sign) != 0
        np.testing.assert_allclose(float(ld[i]), float(logabs), atol=1e-4)
    back, inverse_ld = model.inverse_log_det(y)
    np.testing.assert_allclose(np.asarray(back), x, atol=1e-5)
    np.testing.assert_allclose(np.asarray(inverse_ld), -np.asarray(ld), atol=1e-5)


def test_a_volume_preserving_plugin_has_log_det_zero(use: Callable[[str], ModuleType]) -> None:
    import jax.numpy as jnp
    from flax import nnx

    def flip(module: None, wires: list[Any], box: Box, ctx: Any) -> list[Any]:
        return [-wires[0]]

    extend.generator("flip", _same, iso=True, apply=flip, inverse=flip, volume_preserving=True, plugin="tests")
    model = catnet.compile("morphism f : R[3] -> R[3] = flip ; scale(by=2.0) ; flip\n", rngs=nnx.Rngs(0))
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y, ld = model.forward_log_det(x)
    np.testing.assert_allclose(np.asarray(y), 2 * x)
    np.testing.assert_allclose(np.asarray(ld), np.full(2, 3 * np.log(2.0)), rtol=1e-6)
    assert jnp.asarray(model.inverse_log_det(y)[1]).shape == (2,)


def test_a_plugin_iso_without_log_det_is_e0601_at_the_box(use: Callable[[str], ModuleType]) -> None:
    from flax import nnx

    def flip(module: None, wires: list[Any], box: Box, ctx: Any) -> list[Any]:
        return [-wires[0]]

    extend.generator("flip", _same, iso=True, apply=flip, inverse=flip, plugin="tests")
    model = catnet.compile("morphism f : R[3] -> R[3] = reverse ; flip\n", rngs=nnx.Rngs(0))
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(np.asarray(model(x)), -x)  # it still runs
    with pytest.raises(CatnetError) as info:
        model.forward_log_det(x)
    assert info.value.code == "E0601" and "`flip` is invertible, but its lowering has no log-determinant" in info.value.message
    assert info.value.span is not None and (info.value.span.line, info.value.span.column) == (1, 39)
    # The same for a `lowering=` module that gives no log-determinant (affine_norm_jax without them).
    sys.modules.pop("affine_norm_jax", None)
    use("affine_norm")
    jax_half = importlib.import_module("affine_norm_jax")
    plain = ModuleType("plain_affine_norm")
    for name in ("make", "apply", "inverse"):
        setattr(plain, name, getattr(jax_half, name))
    sys.modules["plain_affine_norm"] = plain
    try:
        extend.generator("affine_norm", use("affine_norm").rule, iso=True, count=use("affine_norm").count,
                         lowering="plain_affine_norm", plugin="tests")
        model = catnet.compile("morphism g : R[4] -> R[4] = affine_norm\n", rngs=nnx.Rngs(0))
        np.testing.assert_allclose(np.asarray(model(np.ones((2, 4), np.float32))), 1.0)  # it runs
        with pytest.raises(CatnetError) as info:
            model.forward_log_det(np.ones((2, 4), np.float32))
        assert info.value.code == "E0601" and info.value.span is not None and info.value.span.column == 29
    finally:
        del sys.modules["plain_affine_norm"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"forward_ld": _apply_ld, "inverse_ld": _apply_ld}, "is not registered with `iso=True`: only an isomorphism"),
        ({"volume_preserving": True}, "volume_preserving=True but is not registered with `iso=True`"),
        ({"iso": True, "inverse": _apply, "forward_ld": _apply_ld}, "has `forward_ld` but no `inverse_ld`"),
        ({"iso": True, "inverse": _apply, "inverse_ld": _apply_ld}, "has `inverse_ld` but no `forward_ld`"),
        ({"iso": True, "inverse": _apply, "forward_ld": _apply_ld, "inverse_ld": _apply_ld, "volume_preserving": True},
         "so it takes no `forward_ld`/`inverse_ld`"),
        ({"iso": True, "inverse": _apply, "volume_preserving": 1}, "`volume_preserving=` of `g` must be True or False"),
        ({"iso": True, "inverse": _apply, "forward_ld": _apply_ld, "inverse_ld": lambda x: x},
         r"`inverse_ld` of `g` must take \(module, wires, box, ctx\)"),
        ({"iso": True, "inverse": _apply, "forward_ld": "log_det", "inverse_ld": _apply_ld}, "`forward_ld` of `g` must be a function"),
    ],
)
def test_log_det_registration_mistakes(kwargs: dict[str, object], message: str) -> None:
    before = dict(GENERATORS)
    with pytest.raises(RegistrationError, match=message):
        extend.generator("g", _same, apply=_apply, **kwargs)  # type: ignore[arg-type]
    assert GENERATORS == before


def test_log_det_registration_needs_an_implementation_of_its_own() -> None:
    with pytest.raises(RegistrationError, match="but no `apply`"):
        extend.generator("g", _same, iso=True, volume_preserving=True)
    with pytest.raises(RegistrationError, match="not both"):
        extend.generator("g", _same, iso=True, lowering="pkg.mod", forward_ld=_apply_ld, inverse_ld=_apply_ld)
    assert "g" not in GENERATORS


def test_a_lowering_with_inconsistent_log_dets_is_e0905(use: Callable[[str], ModuleType]) -> None:
    from flax import nnx

    half = ModuleType("half_log_det")
    half.apply = half.inverse = _apply  # type: ignore[attr-defined]
    half.forward_ld = _apply_ld  # type: ignore[attr-defined]
    sys.modules["half_log_det"] = half
    try:
        extend.generator("half", _same, iso=True, lowering="half_log_det", plugin="tests")
        with pytest.raises(CatnetError) as info:  # when the lowering is imported: building the model
            catnet.compile("morphism f : R[2] -> R[2] = half\n", rngs=nnx.Rngs(0))
        assert info.value.code == "E0905"
        assert "does not fit its signature: `half` has `forward_ld` but no `inverse_ld`" in info.value.message
    finally:
        del sys.modules["half_log_det"]


# -- a plugin's bugs are located diagnostics (golden) ------------------------------------------

#: Diagnostics of the command line, run in tests/ (stderr, exit status 1).
CLI_CASES: dict[str, list[str]] = {
    "plugins_raising_rule": ["--plugin", "plugins/broken.py", "check", "golden/plugins/plugins_raising_rule.cat"],
    "plugins_list_rule": ["check", "--plugin", "plugins/broken.py", "golden/plugins/plugins_list_rule.cat"],
    "plugins_zero_rule": ["check", "--plugin", "plugins/broken.py", "golden/plugins/plugins_zero_rule.cat"],
    "plugins_raising_count": ["summary", "--plugin", "plugins/broken.py", "golden/plugins/plugins_raising_count.cat"],
    "plugins_no_module": ["--plugin", "no_such_catnet_plugin", "check", "golden/plugins/plugins_raising_rule.cat"],
    "plugins_no_file": ["--plugin", "plugins/no_such_file.py", "check", "golden/plugins/plugins_raising_rule.cat"],
    "plugins_not_a_name": ["--plugin", "two words", "check", "golden/plugins/plugins_raising_rule.cat"],
    "plugins_import_fails": ["--plugin", "plugins/fails.py", "check", "golden/plugins/plugins_raising_rule.cat"],
    "plugins_duplicate": ["--plugin", "plugins/duplicate.py", "check", "golden/plugins/plugins_raising_rule.cat"],
}

#: Diagnostics of ``catnet.compile`` and a forward pass (``CatnetError.render()``).
API_CASES = ["plugins_wrong_count", "plugins_raising_apply", "plugins_drop_batch", "plugins_one_array",
             "plugins_undeclared_noise", "plugins_missing_lowering"]


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_golden(case: str) -> None:
    proc = cli(*CLI_CASES[case], cwd=HERE)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    golden(GOLDEN / f"{case}.err", proc.stderr)
    assert proc.stderr.split("error[", 1)[1][:4] == "E090"


@pytest.mark.parametrize("case", API_CASES)
def test_api_golden(case: str, use: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch) -> None:
    from flax import nnx

    use("broken")
    monkeypatch.chdir(HERE)
    with pytest.raises(CatnetError) as info:
        model = catnet.compile(f"golden/plugins/{case}.cat", rngs=nnx.Rngs(0))
        model(np.zeros((3, 4), np.float32))
    text = info.value.render() + "\n"
    golden(GOLDEN / f"{case}.err", text)
    assert info.value.code in ("E0904", "E0905")
    assert text.startswith(f"golden/plugins/{case}.cat:2:")


#: Diagnostics of ``model.forward_log_det`` through a plugin's log-determinant (``CatnetError.render()``).
LOG_DET_CASES = ["plugins_raising_log_det", "plugins_log_det_shape"]


@pytest.mark.parametrize("case", LOG_DET_CASES)
def test_log_det_golden(case: str, use: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch) -> None:
    from flax import nnx

    use("broken")
    monkeypatch.chdir(HERE)
    model = catnet.compile(f"golden/plugins/{case}.cat", rngs=nnx.Rngs(0))
    x = np.zeros((3, 4), np.float32)
    np.testing.assert_array_equal(np.asarray(model(x)), x)  # the plain lowering does not need it
    with pytest.raises(CatnetError) as info:
        model.forward_log_det(x)
    text = info.value.render() + "\n"
    golden(GOLDEN / f"{case}.err", text)
    assert info.value.code == "E0905"
    assert text.startswith(f"golden/plugins/{case}.cat:2:")
