"""``python -m catnet`` is the ``catnet`` command."""

from .cli import entry

entry()
