"""Assets by group: ingestion, scenarios, strategies, reports."""
