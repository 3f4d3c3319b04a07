"""A catnet plugin that fails while it is imported."""

raise RuntimeError("this plugin needs a GPU driver that is not installed")
