"""SQLAlchemy 2 data layer, the same on SQLite and PostgreSQL."""
