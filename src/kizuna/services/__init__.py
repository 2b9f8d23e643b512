"""Use cases: command handlers, the unit of work and read queries."""
