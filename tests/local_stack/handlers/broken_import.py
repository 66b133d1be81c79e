"""A handler module that fails while it is imported (the init phase)."""

raise KeyError("a setting the module needs at import")
