-- SQLite twin of Postgres/0009_event_positions_without_counter.sql; same numbering. SQLite's single
-- writer numbers events by rowid in commit order, so its schema stays as it is.
SELECT 1;
