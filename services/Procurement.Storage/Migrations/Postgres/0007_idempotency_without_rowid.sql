-- PostgreSQL twin of Sqlite/0007_idempotency_without_rowid.sql; same numbering, same semantics.
-- SQLite rebuilds idempotency_records as a table clustered on its key. PostgreSQL tables are heaps
-- with the key in a separate index whatever one declares, so the schema stays as it is; the number
-- is kept so both providers count the same migrations.
SELECT 1;
