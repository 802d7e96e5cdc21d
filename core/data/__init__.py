"""Market data: schemas, the three storage tiers and the read-through store."""
