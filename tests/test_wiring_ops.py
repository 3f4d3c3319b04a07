"""Arithmetic in the wiring form: `+ - * /`, unary `-` and number constants.

Parsing (precedence, associativity, `-1` against `x - 1`, spans), `fmt`
(canonical, minimal parentheses, idempotent, keeps the AST), elaboration
(the boxes `catnet check` builds), the lowered functions against NumPy and
against a GRU cell written by hand in JAX, and the errors.
"""

from __future__ import annotations

import math
import operator
from typing import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catnet import CatnetError, loads
from catnet import ast as A
from catnet.fmt import format_text, statement, wexpr
from catnet.syntax import MAX_NESTING, parse


def _body(text: str) -> tuple[A.Stmt, ...]:
    decl = parse(text).decls[-1]
    assert isinstance(decl, A.WiringDecl)
    return decl.body


def _ret(expr: str) -> A.WExpr:
    """The AST of ``expr`` returned from a wiring block."""
    (ret,) = _body(f"morphism f(x : R[4], y : R[4], z : R[4]) -> R[4] {{\n  return {expr}\n}}\n")
    assert isinstance(ret, A.Return)
    return ret.values[0]


x, y, z = A.Wire("x"), A.Wire("y"), A.Wire("z")


def bin_(op: str, a: A.WExpr, b: A.WExpr) -> A.WBin:
    return A.WBin(op, a, b)


# -- parsing -------------------------------------------------------------------------


@pytest.mark.parametrize("text, tree", [
    ("x + y * z", bin_("+", x, bin_("*", y, z))),
    ("x * y + z", bin_("+", bin_("*", x, y), z)),
    ("x - y - z", bin_("-", bin_("-", x, y), z)),
    ("x / y / z", bin_("/", bin_("/", x, y), z)),
    ("x - (y - z)", bin_("-", x, bin_("-", y, z))),
    ("x * y / z * x", bin_("*", bin_("/", bin_("*", x, y), z), x)),
    ("-x * y", bin_("*", A.WNeg(x), y)),
    ("x * -y", bin_("*", x, A.WNeg(y))),
    ("-(x * y)", A.WNeg(bin_("*", x, y))),
    ("- -x", A.WNeg(A.WNeg(x))),
    ("(1 - z) * x + z * y", bin_("+", bin_("*", bin_("-", A.WNum(1), z), x), bin_("*", z, y))),
    ("x -1", bin_("-", x, A.WNum(1))),
    ("x-1", bin_("-", x, A.WNum(1))),
    ("x - -1", bin_("-", x, A.WNum(-1))),
    ("-1 * x", bin_("*", A.WNum(-1), x)),
    ("- 2.5e-3", A.WNum(-0.0025)),
    ("-(-1)", A.WNeg(A.WNum(-1))),
    ("0.5 * x / 2", bin_("/", bin_("*", A.WNum(0.5), x), A.WNum(2))),
])
def test_precedence_and_associativity(text: str, tree: A.WExpr) -> None:
    assert _ret(text) == tree


def test_call_arguments_are_wire_expressions_literals_and_keywords() -> None:
    call = _ret('g(x - 1, -1, 2 * 3, "same", true, k=-1)')
    assert isinstance(call, A.WCall)
    assert call.args == (
        bin_("-", x, A.WNum(1)), A.WNum(-1), bin_("*", A.WNum(2), A.WNum(3)),
        A.Lit("same"), A.Lit(True), A.Arg("k", A.Lit(-1)),
    )


def test_every_node_spans_its_first_to_last_token() -> None:
    text = "morphism f(x : R[4], z : R[4]) -> R[4] {\n  return (1 - z) * -x\n}\n"
    (ret,) = _body(text)
    e = ret.values[0]
    assert isinstance(e, A.WBin) and isinstance(e.left, A.WBin) and isinstance(e.right, A.WNeg)
    line = text.splitlines()[1]

    def shown(node: A.WExpr) -> str:
        assert node.span is not None and node.span.line == 2
        return line[node.span.column - 1:node.span.end_column - 1]

    assert shown(e) == "(1 - z) * -x"
    assert shown(e.left) == "1 - z"
    assert shown(e.left.left) == "1"
    assert shown(e.right) == "-x"


def test_a_long_arithmetic_chain_is_refused_with_its_name() -> None:
    text = "morphism f(x : R[4]) -> R[4] {\n  return x" + " * x" * (MAX_NESTING + 1) + "\n}\n"
    with pytest.raises(CatnetError) as info:
        parse(text)
    assert info.value.code == "E0106" and "a product of wires" in info.value.message


# -- fmt -----------------------------------------------------------------------------


@pytest.mark.parametrize("text, canonical", [
    ("(1-z)*x+z*y", "(1 - z) * x + z * y"),
    ("((x * y)) + (z)", "x * y + z"),
    ("x - (y + z)", "x - (y + z)"),
    ("(x - y) + z", "x - y + z"),
    ("x / (y * z)", "x / (y * z)"),
    ("(x / y) * z", "x / y * z"),
    ("-(x)", "-x"),
    ("-(-x)", "-(-x)"),
    ("- -x", "-(-x)"),
    ("- - 1", "-(-1)"),
    ("-(1)", "-1"),
    ("(-x) * y", "-x * y"),
    ("-(x * y)", "-(x * y)"),
    ("x*-y", "x * -y"),
    ("x -1", "x - 1"),
    ("x - -1", "x - -1"),
    ("g(x -1, - 1, 2*3)", "g(x - 1, -1, 2 * 3)"),
    ("1e-3 * x", "0.001 * x"),
])
def test_fmt_prints_canonically(text: str, canonical: str) -> None:
    src = f"morphism f(x : R[4], y : R[4], z : R[4]) -> R[4] {{\n  return {text}\n}}\n"
    out = format_text(src)
    assert out == f"morphism f(x : R[4], y : R[4], z : R[4]) -> R[4] {{\n  return {canonical}\n}}\n"
    assert format_text(out) == out
    assert parse(out).decls == parse(src).decls


def test_a_long_negation_chain_formats() -> None:
    e: A.WExpr = x
    for _ in range(3000):
        e = A.WNeg(e)
    assert wexpr(e) == "-(" * 2999 + "-x" + ")" * 2999


_NUMBERS = st.one_of(
    st.integers(min_value=-10**6, max_value=10**6),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
).map(A.WNum)


def _neg(e: A.WExpr) -> A.WExpr:
    # The parser folds `-` into a number that prints without a sign; the
    # trees drawn here are the ones the parser can build.
    if isinstance(e, A.WNum) and math.copysign(1, e.value) > 0:
        return A.WNum(-e.value)
    return A.WNeg(e)


_TREES = st.recursive(
    st.one_of(st.sampled_from([x, y, z, A.Wire("true")]), _NUMBERS),
    lambda sub: st.one_of(
        st.builds(A.WBin, st.sampled_from("+-*/"), sub, sub),
        sub.map(_neg),
        st.builds(lambda a, b: A.WCall("g", None, (a, b)), sub, sub),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TREES)
def test_fmt_keeps_the_tree_and_is_idempotent(tree: A.WExpr) -> None:
    text = f"morphism f(x : R[4]) -> R[4] {{\n  {statement(A.Return((tree,)))}\n}}\n"
    (ret,) = _body(text)
    assert ret.values == (tree,)
    assert format_text(text) == text


# -- elaboration -----------------------------------------------------------------------

_STRUCTURAL = {"copy", "swap", "discard"}


def _boxes(body: str, want: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """The boxes (name, arguments) a wiring body elaborates to, wiring left out.

    Only the arguments named in ``want`` are kept: generators gain
    arguments with defaults, which do not concern the elaboration.
    """
    m = loads(f"morphism f(x : R[4], y : R[4]) -> R[4] {{\n  {body}\n}}\n")
    boxes = [b for b in m.diagram("f").boxes if b.name not in _STRUCTURAL]
    keys = [set(args) for _, args in want] + [set()] * len(boxes)
    return [(b.name, {k: v for k, v in b.args if k in ks}) for b, ks in zip(boxes, keys)]


@pytest.mark.parametrize("body, boxes", [
    ("return x + y", [("add", {})]),
    ("return x - y", [("sub", {})]),
    ("return x * y", [("mul", {})]),
    ("return x / y", [("div", {})]),
    ("return -x", [("neg", {})]),
    ("return 2 * x", [("scale", {"by": 2.0})]),
    ("return x * 2", [("scale", {"by": 2.0})]),
    ("return x / 4", [("scale", {"by": 0.25})]),
    ("return x + 1", [("shift", {"by": 1.0})]),
    ("return 1 + x", [("shift", {"by": 1.0})]),
    ("return x - 1", [("shift", {"by": -1.0})]),
    ("return 1 - x", [("neg", {}), ("shift", {"by": 1.0})]),
    ("return 0 - x", [("neg", {})]),
    ("return (1 - 0.5) * x", [("scale", {"by": 0.5})]),
    ("return x / (2 * 2 - 2)", [("scale", {"by": 0.5})]),
    ("return -(2 - 3) * x", [("scale", {"by": 1.0})]),
    ("return x * 2 * 3", [("scale", {"by": 2.0}), ("scale", {"by": 3.0})]),
    ("return 2 * 3 * x", [("scale", {"by": 6.0})]),
    ("return x + y * 2", [("scale", {"by": 2.0}), ("add", {})]),
    ("return (x + y) * 2", [("add", {}), ("scale", {"by": 2.0})]),
    ("return -x - -y", [("neg", {}), ("neg", {}), ("sub", {})]),
])
def test_operators_elaborate_to_the_arith_generators(body: str, boxes: list) -> None:
    assert _boxes(body, boxes) == boxes


def test_constant_call_arguments_stay_generator_arguments() -> None:
    want = [("softmax", {"axis": -1}), ("dense", {"features": 4}), ("reshape", {"shape": (4,)}),
            ("scale", {"by": -1.0}), ("add", {})]
    assert _boxes("return dense(softmax(x, -1), 2 * 2) + reshape(y, 2 * 2) * (1 - 2)", want) == want
    assert _boxes("return dropout(x, 1 / 4)", [("dropout", {"rate": 0.25})]) == [("dropout", {"rate": 0.25})]


def test_a_call_argument_that_mentions_a_wire_is_a_wire() -> None:
    want = [("scale", {"by": 2.0}), ("add", {})]
    assert _boxes("return add(x, 2 * y)", want) == want


def test_the_boxes_carry_the_span_of_their_operation() -> None:
    m = loads("morphism f(x : R[4]) -> R[4] {\n  return 3 - x * 2\n}\n")
    spans = {(b.name, b.span.column, b.span.end_column) for b in m.diagram("f").boxes if b.span is not None}
    assert spans >= {("scale", 14, 19), ("neg", 10, 19), ("shift", 10, 19)}


def test_a_wire_used_in_both_operands_is_copied() -> None:
    m = loads("morphism sq(x : R[4]) -> R[4] {\n  return x * x\n}\n")
    assert [b.name for b in m.diagram("sq").boxes] == ["copy", "mul"]


def test_arithmetic_broadcasts_as_the_generators_do() -> None:
    m = loads("morphism f(x : R[8, 4], b : R[4]) -> R[8, 4] {\n  return 2 * x - b\n}\n")
    d = m.diagram("f")
    assert [b.name for b in d.boxes if b.name not in _STRUCTURAL] == ["scale", "sub"] and str(d.cod) == "R[8, 4]"


GRU = """
morphism gru_cell(h : R[16], x : R[4]) -> R[16] {
  z = sigmoid(dense(concat(h, x)))
  r = sigmoid(dense(concat(h, x)))
  n = tanh(dense(concat(r * h, x)))
  return (1 - z) * n + z * h
}
"""


def test_the_gru_cell_checks() -> None:
    d = loads(GRU).diagram("gru_cell")
    names = [b.name for b in d.boxes if b.name not in _STRUCTURAL]
    assert names == ["concat", "dense", "sigmoid", "concat", "dense", "sigmoid", "mul", "concat", "dense", "tanh",
                     "neg", "shift", "mul", "mul", "add"]


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("body, code, shown", [
    ("return 1", "E0505", "1"),
    ("h = 2 * 3\n  return x + h", "E0505", "2 * 3"),
    ("return g(x, 1)", "E0505", "g(x, 1)"),
    ("return x / 0", "E0506", "x / 0"),
    ("return x / (1 - 1)", "E0506", "x / (1 - 1)"),
    ("return x * (1e308 * 10)", "E0506", "1e308 * 10"),
    ("return y + 1 / x", "E0507", "1 / x"),
    ("return 2 / (x + y)", "E0507", "2 / (x + y)"),
    ("return split(x, 2) * 2", "E0306", "split(x, 2) * 2"),
    ("return -copy(x)", "E0306", "-copy(x)"),
    ("return add(x, 1)", "E0504", "add(x, 1)"),
])
def test_misuses_are_located_errors(body: str, code: str, shown: str) -> None:
    text = f"morphism g : R[4] -> R[4] = relu\nmorphism f(x : R[4], y : R[4]) -> R[4] {{\n  {body}\n}}\n"
    with pytest.raises(CatnetError) as info:
        loads(text)
    err = info.value
    assert err.code == code
    span = err.span
    assert span is not None
    line = text.splitlines()[span.line - 1]
    assert line[span.column - 1:span.end_column - 1] == shown
    assert err.help or err.notes or code == "E0506"


# -- the lowered functions ---------------------------------------------------------------

jax = pytest.importorskip("jax")
jnp = jax.numpy
nnx = pytest.importorskip("flax.nnx")

from catnet import compile  # noqa: E402
from catnet.summary import total_params  # noqa: E402

_OPS: dict[str, Callable] = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def _reference(e: A.WExpr, env: dict[str, np.ndarray]) -> np.ndarray | float:
    """``e`` evaluated in float64 NumPy, the meaning the elaboration must keep."""
    if isinstance(e, A.Wire):
        return env[e.name]
    if isinstance(e, A.WNum):
        return e.value
    if isinstance(e, A.WNeg):
        return -_reference(e.operand, env)
    assert isinstance(e, A.WBin)
    return _OPS[e.op](_reference(e.left, env), _reference(e.right, env))


def _bound(e: A.WExpr) -> float:
    """A bound on the magnitude of every value met in computing ``e`` (|x|, |y| <= 2, y >= 1)."""
    if isinstance(e, A.Wire):
        return 2.0
    if isinstance(e, A.WNum):
        return abs(e.value)
    if isinstance(e, A.WNeg):
        return _bound(e.operand)
    assert isinstance(e, A.WBin)
    a, b = _bound(e.left), _bound(e.right)
    if e.op == "/":
        return a / (1.0 if isinstance(e.right, A.Wire) else abs(_reference(e.right, {})))
    return a * b if e.op == "*" else a + b


#: Constants away from 0; a divisor is one of them, or the wire ``y``,
#: which the inputs keep in [1, 2].
_CONSTANTS = st.one_of(
    st.sampled_from([-3, -1.5, -0.5, 0.25, 1, 2, 4]).map(A.WNum),
    st.builds(lambda a, b: A.WBin("*", A.WNum(a), A.WNum(b)), st.sampled_from([-2, 0.5, 3]), st.sampled_from([-1, 2])),
)

#: Expressions the elaboration accepts, each with at least one wire.
_WIRED = st.recursive(
    st.sampled_from([x, y]),
    lambda sub: st.one_of(
        st.builds(A.WBin, st.sampled_from("+-*"), sub, sub),
        st.builds(A.WBin, st.sampled_from("+-*"), sub, _CONSTANTS),
        st.builds(A.WBin, st.sampled_from("+-*"), _CONSTANTS, sub),
        st.builds(A.WBin, st.just("/"), sub, st.one_of(_CONSTANTS, st.just(y))),
        sub.map(_neg),
    ),
    max_leaves=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_WIRED, st.integers(0, 2**31 - 1))
def test_the_lowered_expression_computes_what_it_says(tree: A.WExpr, seed: int) -> None:
    text = f"morphism f(x : R[3], y : R[3]) -> R[3] {{\n  {statement(A.Return((tree,)))}\n}}\n"
    rng = np.random.default_rng(seed)
    xs = rng.uniform(-2, 2, (2, 3)).astype(np.float32)
    ys = rng.uniform(1, 2, (2, 3)).astype(np.float32)
    model = compile(text, "f", rngs=nnx.Rngs(0))
    got = model(jnp.asarray(xs), jnp.asarray(ys))
    want = _reference(tree, {"x": xs.astype(np.float64), "y": ys.astype(np.float64)})
    np.testing.assert_allclose(np.asarray(got), np.broadcast_to(want, (2, 3)), rtol=1e-5, atol=1e-5 * _bound(tree))


def test_the_gru_cell_equals_the_paper_written_in_jax() -> None:
    model = compile(GRU, "gru_cell", rngs=nnx.Rngs(0))
    rng = np.random.default_rng(1)
    params = nnx.state(model, nnx.Param)
    for _, var in nnx.to_flat_state(params):
        var.set_value(jnp.asarray(rng.normal(0, 0.5, var.get_value().shape), jnp.float32))
    nnx.update(model, params)
    weights = {k: v.get_value() for k, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}

    def dense(i: int, v: jax.Array) -> jax.Array:
        return v @ weights[("dense", i, "kernel")] + weights[("dense", i, "bias")][None, :]

    def cell(h: jax.Array, x: jax.Array) -> jax.Array:
        hx = jnp.concatenate([h, x], axis=-1)
        z = jax.nn.sigmoid(dense(0, hx))
        r = jax.nn.sigmoid(dense(1, hx))
        n = jnp.tanh(dense(2, jnp.concatenate([r * h, x], axis=-1)))
        return (1 - z) * n + z * h

    h = jnp.asarray(rng.normal(size=(5, 16)), jnp.float32)
    x_ = jnp.asarray(rng.normal(size=(5, 4)), jnp.float32)
    got = model(h, x_)
    np.testing.assert_allclose(np.asarray(got), np.asarray(cell(h, x_)), rtol=1e-5, atol=1e-5)



def test_arithmetic_adds_no_weights_to_the_count() -> None:
    # Three dense layers of 20 -> 16; `summary` and the lowering agree.
    model = compile(GRU, "gru_cell", rngs=nnx.Rngs(0))
    count = sum(v.get_value().size for _, v in nnx.to_flat_state(nnx.state(model, nnx.Param)))
    assert total_params(loads(GRU).diagram("gru_cell")) == count == 3 * (20 * 16 + 16)
