"""The one error type of the analysis tools.

Analysis reads arrays, not ``.cat`` source, so its errors carry no span: an
:class:`AnalysisError` is a human message that says what was wrong with the
input (with the numbers) and what to do instead.  It is a ``ValueError`` so
that callers who already catch bad values catch it too; the CLI prints its
message and exits 1.
"""

from __future__ import annotations


class AnalysisError(ValueError):
    """Bad input to an analysis tool: too few points, non-finite values, a bad option.

    ``step`` names the step of :func:`catnet.analysis.report.analyze` that
    refused (``"intrinsic"``, ``"hessian"``), where one did.
    """

    def __init__(self, message: str, step: str | None = None) -> None:
        super().__init__(message)
        self.step = step
