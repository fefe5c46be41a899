-- Event positions no longer come from one counter row that every writer holds to its commit.
-- A group writes its events at (transaction id << 20) | ordinal, and readers read only below the
-- oldest transaction still running (pg_current_snapshot()'s xmin), so no event can appear behind a
-- reader. pools.event_xid is the newest transaction that locked the pool to write: a group whose own
-- id is older defers the unit to a new transaction, so a pool's events are in commit order.
-- Positions already written are below 1 << 20 times any transaction id that wrote them, so new ones
-- sort after them.
DROP TABLE allocation_event_counter;
ALTER TABLE pools ADD COLUMN event_xid BIGINT NOT NULL DEFAULT 0;
