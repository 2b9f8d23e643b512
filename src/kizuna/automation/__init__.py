"""Marketing automation: segment evaluation, journeys, the worker and channels.

Plugins are discovered by name: every module of this package whose name ends
in ``_fields`` registers segment fields when the package is imported, and
every module ending in ``_actions`` registers journey actions when
:func:`kizuna.automation.runner.load_plugins` runs. A feature area adds its
fields or actions by adding such a module, without editing this one.
"""

import importlib
import pkgutil


def _import_modules(suffix: str) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.endswith(suffix):
            importlib.import_module(f"{__name__}.{info.name}")


# Built-in segment fields of other areas, registered like any plugin's.
_import_modules("_fields")
