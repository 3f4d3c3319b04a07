"""``catnet summary``: parameter counts from the IR, checked by hand and
against the parameters of the lowered model."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import catnet
from catnet.summary import render, summarize, total_params
from conftest import EXAMPLES, ROOT


def diagram(name: str):
    return catnet.load(ROOT / "examples" / f"{name}.cat").diagram()


def test_digits_mlp_count_by_hand() -> None:
    # encoder.dense 64 -> 128: 64*128 + 128; head.dense 128 -> 10: 128*10 + 10
    assert total_params(diagram("digits_mlp")) == (64 * 128 + 128) + (128 * 10 + 10) == 9610


def test_digits_cnn_count_by_hand() -> None:
    conv1 = 3 * 3 * 1 * 16 + 16  # 3x3 kernel, 1 -> 16 channels
    conv2 = 3 * 3 * 16 * 32 + 32  # 3x3 kernel, 16 -> 32 channels
    dense1 = 128 * 64 + 64  # flatten(2x2x32) -> 64
    dense2 = 64 * 10 + 10
    assert total_params(diagram("digits_cnn")) == conv1 + conv2 + dense1 + dense2 == 13706


def test_transformer_count_by_hand() -> None:
    d, vocab, hidden, blocks = 64, 256, 256, 4
    embed = vocab * d
    attention = 4 * (d * d + d)  # query, key, value, out: each d x d with bias
    mlp = (d * hidden + hidden) + (hidden * d + d)
    block = 2 * (2 * d) + attention + mlp  # two layernorms (scale, bias)
    head = 2 * d + (d * vocab + vocab)  # final layernorm and dense
    assert total_params(diagram("transformer")) == embed + blocks * block + head == 233088


def test_shared_instance_counts_once() -> None:
    s = summarize(diagram("siamese"))
    enc = [r for r in s.rows if r.path == "enc"]
    assert len(enc) == 2 and enc[0].note == "shared `enc`" and "counted once" in enc[1].note
    encoder = (64 * 128 + 128) + (128 * 32 + 32)
    compare = (64 * 32 + 32) + (32 * 1 + 1)
    assert s.total == encoder + compare == 14561


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_counts_equal_the_lowered_parameters(path) -> None:
    jax = pytest.importorskip("jax")
    nnx = pytest.importorskip("flax.nnx")
    from catnet.lower import lower

    d = catnet.load(path).diagram()
    model = lower(d, rngs=nnx.Rngs(0))
    flat = {".".join(map(str, p)): v.get_value().size for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    assert total_params(d) == sum(flat.values()) == sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    # every row with parameters names the module that holds them
    for row in summarize(d).rows:
        if row.params == 0 or row.kind == "composite" or row.kind.startswith("repeat"):
            continue
        copies = 1
        for m in re.finditer(r"\[\*\]", row.path):
            copies *= int(next(r for r in summarize(d).rows if r.path == row.path[: m.start()]).kind.split()[1])
        prefix = re.sub(r"\[(\d+)\]", r".\1", row.path.replace("[*]", "")) + "."
        held = sum(n for p, n in flat.items() if p.startswith(prefix))
        assert held == row.params * copies, row.path


def test_table_lists_boxes_and_total() -> None:
    text = render(summarize(diagram("digits_cnn")), "lenet")
    lines = text.splitlines()
    assert lines[0] == "lenet"
    assert re.search(r"^stage1\.conv\s+conv\s+Image -> R\[8, 8, 16\]\s+160$", text, re.M)
    assert re.search(r"^classifier\.dense\[1\]\s+dense\s+R\[64\] -> R\[10\]\s+650$", text, re.M)
    assert re.search(r"^total\s+13,706$", lines[-1])


def test_cli_summary_is_instant_and_does_not_import_jax() -> None:
    code = (
        "import sys\n"
        "from catnet.cli import main\n"
        f"rc = main(['summary', {str(ROOT / 'examples' / 'transformer.cat')!r}])\n"
        "assert rc == 0, rc\n"
        "assert 'jax' not in sys.modules and 'flax' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "block[*].attention" in out.stdout
    assert out.stdout.rstrip().splitlines()[-1].split()[-1] == "233,088"


def test_cli_summary_reports_errors() -> None:
    code = "from catnet.cli import main\nraise SystemExit(main(['summary', 'no/such/file.cat']))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 1
    assert "error[E0001]" in out.stderr and "Traceback" not in out.stderr


def test_summary_as_json_has_every_row_and_the_total(capsys) -> None:
    """``catnet summary --format json``: the table's rows and total as data, for scripts and editors."""
    import json

    from catnet.cli import main

    assert main(["summary", str(ROOT / "examples" / "siamese.cat"), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "catnet-summary/1" and doc["entry"] == "siamese"
    assert doc["type"] == "Image ⊗ Image -> Score"
    assert main(["summary", str(ROOT / "examples" / "siamese.cat")]) == 0
    text = capsys.readouterr().out
    assert f"{doc['total']:,}" in text.splitlines()[-1]
    assert [r["box"] for r in doc["rows"]] == [line.split()[0] for line in text.splitlines()[3:-2]]
    assert doc["rows"][0] == {"box": "enc", "depth": 0, "kind": "composite", "type": "Image -> Embedding",
                              "params": 12448, "notes": "shared `enc`"}
