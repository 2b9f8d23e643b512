"""The system of record: SQLAlchemy tables, the schema's migrations, bulk writes."""
