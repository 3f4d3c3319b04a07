"""How long the language server takes to re-check a 1,000-line file after a one-line edit.

Writes a file of about 1,000 lines — 50 stages of a transformer (objects,
a feed-forward definition, a wiring-form block and a stage using the one
before, with comments), about 350 boxes written — opens it in ``catnet lsp``
(a subprocess, spoken to over its real protocol) and then edits one line at
a time, at 20 places spread from the top of the file to the bottom, each edit
keeping the file valid.  The time of an edit is from sending
``textDocument/didChange`` to receiving the diagnostics it causes.  For
comparison it prints the time of a full check of the same text in this
process (what the server would take without keeping anything).

Run: ``python bench/lsp_recheck.py``; target: median under 50 ms.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catnet.check import check_text  # noqa: E402
from catnet.editor.client import Client  # noqa: E402

UNIT = """# Stage {i}: a pre-norm transformer block and its feed-forward part.
#
# Each stage uses the one before it, so an edit here can change
# what every later stage checks against.
object Stream{i} = Seq[T](R[64])   # the residual stream of stage {i}
object Wide{i} = Seq[T](R[256])     # the feed-forward width

# The feed-forward sub-block acts on each position alike.
morphism mlp{i} : Stream{i} -> Stream{i} =
  (dense : Stream{i} -> Wide{i}) ; gelu ; dense

# The wiring form names wires; a wire used twice is copied.
morphism block{i}(x : Stream{i}) -> Stream{i} {{
  h = x + attention(layernorm(x), heads=4, causal=true)
  return h + mlp{i}(layernorm(h))
}}

morphism stage{i} : Stream{i} -> Stream{i} =
  {prev} ; block{i} ; layernorm
"""

EDITS = 20


def program(units: int = 50) -> str:
    """About 20 lines per stage: 50 stages are 1,000 lines."""
    parts = ["object Tokens = Seq[T](Z[])\nobject Logits = Seq[T](R[256])\n"]
    for i in range(units):
        parts.append(UNIT.format(i=i, prev=f"stage{i - 1}" if i else "block0"))
    parts.append(f"morphism net : Tokens -> Logits =\n  embed(vocab=256) ; stage{units - 1} ; dense\n\nmain net\n")
    return "\n".join(parts)


def main() -> None:
    text = program()
    lines = text.split("\n")
    # One-line edits that keep the file valid: the heads of an attention, 4 to 8.
    targets = [i for i, line in enumerate(lines) if "heads=" in line]
    picks = [targets[round(k * (len(targets) - 1) / (EDITS - 1))] for k in range(EDITS)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stages.cat"
        path.write_text(text, encoding="utf-8")
        uri = path.as_uri()
        client = Client(cwd=tmp).start()
        try:
            client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "catnet", "version": 1, "text": text}})
            assert client.diagnostics(uri) == []
            times = []
            version = 1
            for i in picks:
                lines[i] = lines[i].replace("heads=4", "heads=8") if "heads=4" in lines[i] else lines[i].replace("heads=8", "heads=4")
                version += 1
                edited = "\n".join(lines)
                t0 = time.perf_counter()
                client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                                         "contentChanges": [{"text": edited}]})
                found = client.diagnostics(uri)
                times.append(time.perf_counter() - t0)
                assert found == [], found
        finally:
            client.close()
    full = []
    for _ in range(5):
        t0 = time.perf_counter()
        check_text(text, "stages.cat")
        full.append(time.perf_counter() - t0)
    print(f"file: {len(lines):,} lines, {EDITS} one-line edits from line {picks[0] + 1} to line {picks[-1] + 1}")
    third = EDITS // 3
    for name, part in (("top third", times[:third]), ("middle third", times[third:-third]), ("bottom third", times[-third:])):
        print(f"  {name:<13} median {statistics.median(part) * 1000:6.1f} ms")
    median = statistics.median(times)
    print(f"re-check after an edit: median {median * 1000:.1f} ms, slowest {max(times) * 1000:.1f} ms (target median < 50 ms)")
    print(f"a full check of the file in-process: {statistics.median(full) * 1000:.1f} ms")
    print(f"under 50 ms: {'yes' if median < 0.050 else 'NO'}")


if __name__ == "__main__":
    main()
