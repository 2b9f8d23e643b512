"""Marketing automation: segment evaluation, journeys, the worker and channels."""

# Built-in segment fields of other areas, registered like any plugin's.
from kizuna.automation import programme_fields  # noqa: E402, F401
