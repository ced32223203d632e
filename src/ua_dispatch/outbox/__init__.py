"""The outbox database: the only package that speaks SQL.

``store.Outbox`` owns every statement (claims, leases, send slots, outcomes, one-step sends'
reservations, adding letters, the organizers' commands, purging, reports); ``records`` holds
what it hands in and out without loading SQLAlchemy; ``db`` opens the database and runs the
migrations in ``migrations/``; ``owners`` names lease holders.
"""
