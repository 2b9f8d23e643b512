"""``python -m kizuna``: the same as the ``kizuna`` command."""

from kizuna.cli import run

run()
