"""Marketing automation: segment evaluation, journeys, the worker and channels."""
