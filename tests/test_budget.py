"""The memory estimate: the summary's parameter counts, exact big numbers, E0603 naming the biggest boxes."""

from __future__ import annotations

import subprocess
import sys

import pytest

import catnet
from catnet import budget, summary
from catnet.errors import CatnetError
from catnet.ir import Box, Ty

from conftest import EXAMPLES, ROOT

#: By hand: block = dense 4x4 (20) + layernorm (8) = 28 parameters; `repeat 3`
#: owns three (84), the shared `s` counts once however often it is used (28),
#: the head is 4x2 + 2 = 10: 122.  Activations per example in a forward pass:
#: the input (4), one run of block's two outputs (8), `s` at each of its two
#: uses (16), the head (2): 30; training keeps all three runs of block: 46.
HAND = """object A = R[4]
morphism block : A -> A = dense ; layernorm
shared s = block
morphism net : A -> R[2] = repeat 3 block ; s ; copy ; add ; s ; (dense : A -> R[2])
main net
"""


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_parameters_match_the_summary(path) -> None:  # noqa: ANN001
    diagram = catnet.load(path).diagram()
    assert budget.estimate(diagram).params == summary.total_params(diagram)


def test_hand_count_of_parameters_activations_and_bytes() -> None:
    diagram = catnet.loads(HAND).diagram()
    forward = budget.estimate(diagram, batch=8)
    assert (forward.params, forward.activations) == (122, 30 + 4)  # `add` makes a new wire of 4
    assert forward.bytes == 4 * (122 + 8 * 34)
    training = budget.estimate(diagram, batch=8, training=True)
    assert training.activations == 46 + 4
    assert training.bytes == 4 * (4 * 122 + 2 * 8 * 50)
    heavy = {(h.name, h.where(), h.params, h.copies) for h in forward.heavy}
    assert heavy == {("dense", "<string>:2:27", 80, 4), ("layernorm", "<string>:2:35", 32, 4), ("dense", "<string>:4:67", 10, 1)}


def test_nested_repeat_is_counted_exactly() -> None:
    text = ("object A = R[1000]\nmorphism l1 : A -> A = dense ; relu\nmorphism l2 : A -> A = repeat 100000 l1\n"
            "morphism l3 : A -> A = repeat 100000 l2\nmorphism l4 : A -> A = repeat 2 l3\nmain l4\n")
    est = budget.estimate(catnet.loads(text).diagram())
    assert est.params == 2 * 100000 * 100000 * (1000 * 1000 + 1000) == 20_020_000_000_000_000
    assert est.heavy[0].copies == 20_000_000_000


def test_shared_bodies_are_walked_once_not_expanded() -> None:
    # f_k = f_{k-1} ; f_{k-1}: 2**200 occurrences of one dense, 200 levels deep.
    a = Ty.tensor_space("R", (4,))
    f = Box("dense", a, a, "generator", (("features", 4),)).diagram()
    for k in range(1, 201):
        f = Box(f"f{k}", a, a, "composite", body=f.then(f)).diagram()
    est = budget.estimate(f)
    assert est.params == 2**200 * 20
    assert est.heavy[0].copies == 2**200


def _refusal(text: str, **kwargs: object) -> CatnetError:
    with pytest.raises(CatnetError) as info:
        budget.require_fits(catnet.loads(text, "m.cat").diagram(), **kwargs)  # type: ignore[arg-type]
    assert info.value.code == "E0603"
    return info.value


def test_refusal_names_the_three_biggest_boxes_and_the_total() -> None:
    text = ("object A = R[1024]\nmorphism big : A -> R[8] = dense ; relu ; (dense : A -> R[2048]) ; (dense : R[2048] -> R[8]) ; "
            "layernorm\nmain big\n")
    e = _refusal(text, available=10**6, entry="big")
    assert e.message == "`big` needs about 12.1 MiB of memory to build and run, but the limit given is 976.6 KiB"
    assert e.span is not None and (e.span.line, e.span.column) == (2, 44)  # no entry span given: the biggest box
    assert e.notes == (
        "3,165,208 parameters: 12.1 MiB as float32",
        "activations for a batch of 1: 20.1 KiB",  # 1024 + 1024 + 1024 + 2048 + 8 + 8 values
        "`dense` at 2:44: 2,099,200 parameters, 8 MiB",
        "`dense` at 2:28: 1,049,600 parameters, 4 MiB",
        "`dense` at 2:69: 16,392 parameters, 64 KiB",
    )
    assert e.help is not None and "check_memory=False" in e.help and "--skip-memory-check" in e.help


def test_training_counts_optimizer_state_and_the_entry_span_is_used() -> None:
    module = catnet.loads(HAND, "m.cat")
    span = module.lookup("net").span
    with pytest.raises(CatnetError) as info:
        budget.require_fits(module.diagram(), training=True, batch=4, available=100, entry="net", span=span)
    e = info.value
    assert e.span == span
    assert e.message == "`net` needs about 3.5 KiB of memory to train, but the limit given is 100 bytes"
    assert e.notes[0] == "122 parameters: 1.9 KiB as float32 (weights, gradients and Adam's two moments)"


def test_a_model_that_fits_gets_its_estimate() -> None:
    est = budget.require_fits(catnet.load(ROOT / "examples" / "digits_mlp.cat").diagram(), available=10**9)
    assert est.params == 9610


def test_size_text() -> None:
    assert [budget.size_text(n) for n in (1000, 1024, 1536, 512 * 2**30, 80 * 2**50, 10**30)] == [
        "1000 bytes", "1 KiB", "1.5 KiB", "512 GiB", "80 PiB", "about 10^30 bytes"]


def test_host_memory_is_known_here() -> None:
    found = budget.host_memory()
    assert found is not None and found > 0


def test_budget_and_input_checks_do_not_import_jax() -> None:
    code = "import sys, catnet.budget, catnet.check.inputs; assert 'jax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


class _Device:
    def __init__(self, stats: dict[str, int] | None) -> None:
        self.stats = stats

    def memory_stats(self) -> dict[str, int] | None:
        return self.stats

    def __str__(self) -> str:
        return "cuda:0"


def test_available_memory_is_the_devices_when_jax_reports_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    fake = types.SimpleNamespace(local_devices=lambda: [_Device({"bytes_limit": 80 * 2**30, "bytes_in_use": 2**30})])
    monkeypatch.setitem(sys.modules, "jax", fake)
    assert budget.available_memory() == (79 * 2**30, "the device cuda:0 has")
    fake.local_devices = lambda: [_Device(None)]  # a CPU reports nothing: the host's memory counts
    found = budget.available_memory()
    assert found is not None and found[1] == "this machine has"
