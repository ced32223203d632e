"""The organisers' outbox: scheduled deliveries in a database, worked off by workers."""
