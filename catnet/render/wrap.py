"""Where a long chain of boxes wraps into rows, so that a figure fits its page.

Both back ends lay a nested box out in ranks along the flow (the longest
path from its inputs).  When the ranks are wider than the page, they are
cut into rows that are read like lines of text: left to right, then the
next row below, each row starting at the left again, the wires cut
running from the end of one row back to the start of the next.  A cut is
put where the fewest wires cross it (after a block rather than inside a
residual connection) and the rows are made about equally wide, so the
figure is a block rather than long rows and a short last one.

This module only decides the cuts, from numbers the back end measures in
its own units: :func:`split` is a pure function of the rank widths, the
number of wires over each gap and the width available.
"""

from __future__ import annotations

from collections.abc import Sequence

#: A cut is looked for among the ranks that fill at least this much of a
#: row: a row is not ended early for a cheaper cut.
FILL = 0.55


def split(widths: Sequence[float], cost: Sequence[int], budget: float) -> list[tuple[int, int]]:
    """Rows of ranks, as ``(start, stop)`` ranges, each at most ``budget`` wide where possible.

    ``widths[r]`` is the room rank ``r`` takes along the flow (with the gap
    after it), ``cost[r]`` how many wires cross from ranks ``≤ r`` to ranks
    ``> r`` (the price of cutting after ``r``).  One rank wider than the
    budget is a row of its own.  The rows are as few as the budget allows,
    then as even as they can be, cut where the fewest wires cross.
    Linear in the number of ranks.
    """
    n = len(widths)
    assert len(cost) >= n - 1, (len(cost), n)
    total = sum(widths)
    if n <= 1 or total <= budget:
        return [(0, n)]
    rows = _greedy(widths, cost, budget)
    # The same number of rows, as even as they can be: a narrower budget
    # that still needs no more rows.
    even = max(max(widths), total / len(rows))
    for slack in (1.05, 1.15, 1.3):
        target = min(budget, even * slack)
        trial = _greedy(widths, cost, target)
        if len(trial) <= len(rows):
            return trial
    return rows


def _greedy(widths: Sequence[float], cost: Sequence[int], budget: float) -> list[tuple[int, int]]:
    rows: list[tuple[int, int]] = []
    start, r = 0, 0
    n = len(widths)
    while start < n:
        acc = 0.0
        r = start
        while r < n and (r == start or acc + widths[r] <= budget):
            acc += widths[r]
            r += 1
        if r == n:
            rows.append((start, n))
            break
        # The row could hold ranks start..r-1; cut after the cheapest of
        # those that fill enough of it, the latest on a tie.
        best, best_key, filled = r - 1, None, 0.0
        for c in range(start, r):
            filled += widths[c]
            if filled < FILL * min(budget, acc) and c < r - 1:
                continue
            key = (cost[c], -c)
            if best_key is None or key < best_key:
                best, best_key = c, key
        rows.append((start, best + 1))
        start = best + 1
    return rows

