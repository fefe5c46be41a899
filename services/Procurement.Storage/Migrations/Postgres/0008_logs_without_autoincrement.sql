-- PostgreSQL twin of Sqlite/0008_logs_without_autoincrement.sql; same numbering, same semantics.
-- SQLite stops numbering its event and audit logs through AUTOINCREMENT's sqlite_sequence table.
-- PostgreSQL numbers events from allocation_event_counter and audit records from their sequence,
-- and has no such table, so the schema stays as it is; the number is kept so both providers count
-- the same migrations.
SELECT 1;
