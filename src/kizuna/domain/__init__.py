"""The pure core: dataclasses and rules with no I/O (standard library only)."""
