"""Agent queues: the SQLAlchemy case store (a projection of case events), assignment, desk API."""
