"""Matchers: durable-rules (production, contained in worker processes) and the oracle."""
