"""The ACD: queues, interactions, reservations; state in Redis, records in the database."""
