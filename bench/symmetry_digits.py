"""Train the symmetry examples and write their measured accuracy into ``docs/symmetry.md``.

Three runs of ``catnet train``, each a fresh process with a fixed seed:

* ``examples/c4_digits.cat`` (C4-invariant) and ``examples/cnn_digits.cat``
  (an ordinary CNN of about the same parameter count) on the digits,
  trained on upright images only and evaluated with ``--rotate-test`` on
  the test images each turned by a random multiple of 90° (the same turns
  for both: the same ``--seed``);
* ``examples/deepsets.cat`` (S5-invariant) on ``digit_sums``, sets of five
  digit images labelled with the sum of their digits.

The Markdown table replaces what lies between ``<!-- c4-digits:start -->``
and ``<!-- c4-digits:end -->`` in ``docs/symmetry.md`` (which must exist with
both markers), and the commands that reproduce each number are printed.
About a minute and a half per seed on two CPU cores.

    python bench/symmetry_digits.py [--seeds 0 1 2] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "symmetry.md"
START, END = "<!-- c4-digits:start -->", "<!-- c4-digits:end -->"


@dataclass(frozen=True)
class Model:
    """One example and the ``catnet train`` options it is measured with."""

    label: str
    file: str
    data: str
    options: tuple[str, ...]
    rotate: bool

    def command(self, seed: int) -> list[str]:
        rotate = ("--rotate-test",) if self.rotate else ()
        return ["catnet", "train", self.file, "--data", self.data, *self.options, *rotate, "--seed", str(seed)]


MODELS = (
    Model("C4-invariant (`gconv`, `gpool`)", "examples/c4_digits.cat", "digits", ("--epochs", "30", "--lr", "3e-3"), True),
    Model("ordinary CNN (`conv`)", "examples/cnn_digits.cat", "digits", ("--epochs", "30", "--lr", "3e-3"), True),
    Model(
        "S5-invariant set model (`deepsets`)", "examples/deepsets.cat", "digit_sums",
        ("--epochs", "20", "--lr", "3e-3", "--optimizer", "adamw"), False,
    ),
)


def _train(model: Model, seed: int, scratch: Path) -> dict[str, object]:
    """Run ``catnet train`` for ``model`` in a fresh process; its metrics."""
    run = scratch / f"{Path(model.file).stem}-{seed}"
    metrics = run.with_suffix(".json")
    argv = model.command(seed)
    cli = [sys.executable, "-m", "catnet", *argv[1:], "--out", str(run), "--metrics-out", str(metrics), "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(cli, check=False, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"`{' '.join(argv)}` failed (exit {done.returncode}):\n{done.stderr}")
    return json.loads(metrics.read_text())


def _mean(values: list[float]) -> str:
    """The mean of ``values`` to three places, with the spread over seeds when there are several."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def _chance_of_sums() -> float:
    """The accuracy of always answering the most common sum of the test sets."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from catnet.data import digit_sums, split

    _, test = split(digit_sums(5), 0.2)
    assert test.target is not None
    return float(np.bincount(test.target).max() / len(test))


def table(results: dict[Model, list[dict[str, object]]], seeds: list[int]) -> str:
    """The Markdown table of the measured accuracies, and how they were measured."""
    rows = [
        "| model | file | parameters | test accuracy, upright | test accuracy, each image turned by k·90° | training time |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for model, runs in results.items():
        upright = [float(m["test_accuracy"]) for m in runs]  # type: ignore[arg-type]
        turned = _mean([float(m["test_accuracy_rotated"]) for m in runs]) if model.rotate else "—"  # type: ignore[arg-type]
        seconds = statistics.mean(float(m["seconds"]) for m in runs)  # type: ignore[arg-type]
        rows.append(
            f"| {model.label} | `{model.file}` | {int(runs[0]['params']):,} | {_mean(upright)} | {turned} | {seconds:.0f} s |"  # type: ignore[call-overload]
        )
    shown = ", ".join(map(str, seeds))
    digits, sets = next(iter(results.values()))[0], list(results.values())[-1][0]
    lines = [
        f"Measured by `python bench/symmetry_digits.py` (seed{'s' if len(seeds) > 1 else ''} {shown}"
        + ("; mean ± standard deviation over the seeds" if len(seeds) > 1 else "")
        + f"; {os.cpu_count()} CPU cores, training time including compilation). The digit models train on upright "
        f"images only ({digits['train_examples']} of scikit-learn's 1797, the other {digits['test_examples']} held out); "
        "the turned test set turns each held-out image by its own random multiple of 90°, the same turns for both "
        f"models. The set model classifies the sum of five digit images (46 classes; {sets['train_examples']} training "
        f"sets, {sets['test_examples']} test sets drawn from held-out images only; always answering the most common "
        f"sum scores {_chance_of_sums():.3f}).",
        "",
        *rows,
        "",
        "Each row is one command (add `--metrics-out m.json` for every metric):",
        "",
        "```sh",
        *(" ".join(model.command(seeds[0])) for model in results),
        "```",
    ]
    return "\n".join(lines)


def _marked(doc: Path) -> str:
    """The text of ``doc``; exit with a message unless it exists and holds both markers, in order."""
    if not doc.is_file():
        sys.exit(f"{doc} does not exist: it holds the section this script fills (between {START} and {END})")
    content = doc.read_text(encoding="utf-8")
    if content.count(START) != 1 or content.count(END) != 1 or content.index(START) > content.index(END):
        sys.exit(f"{doc} must hold the markers {START} and {END} once each, in that order")
    return content


def write(doc: Path, text: str) -> None:
    """Replace what lies between the markers of ``doc`` with ``text``."""
    head, rest = _marked(doc).split(START)
    _, tail = rest.split(END)
    doc.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default 0)")
    parser.add_argument("--no-write", action="store_true", help=f"print the table, leave {DOC.name} alone")
    args = parser.parse_args()
    if not args.no_write:
        _marked(DOC)  # before the training, not after it
    results: dict[Model, list[dict[str, object]]] = {}
    with tempfile.TemporaryDirectory(prefix="catnet-symmetry-digits-") as scratch:
        for model in MODELS:
            for seed in args.seeds:
                print(f"$ {' '.join(model.command(seed))}", flush=True)
                metrics = _train(model, seed, Path(scratch))
                rotated = metrics.get("test_accuracy_rotated")
                print(f"  test accuracy {metrics['test_accuracy']:.4f}"
                      + (f", turned {rotated:.4f}" if rotated is not None else "") + f"  ({metrics['seconds']:.1f} s)", flush=True)
                results.setdefault(model, []).append(metrics)
    text = table(results, args.seeds)
    print()
    print(text)
    if not args.no_write:
        write(DOC, text)
        print(f"\nwritten into {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
