-- PostgreSQL twin of Sqlite/0006_open_allocation_indexes.sql; same numbering, same semantics.
-- The pool index serves only the load of a pool's ACTIVE and PENDING allocations, and the end-time
-- index only the sweeper's search for open allocations that are due; each now holds only those, so a
-- transition no longer writes entries among the ever-growing ended allocations.
DROP INDEX ix_allocations_pool_state;
CREATE INDEX ix_allocations_pool_open ON allocations (pool_id, state) WHERE state IN ('PENDING', 'ACTIVE');

DROP INDEX ix_allocations_state_end;
CREATE INDEX ix_allocations_due ON allocations (end_time_ms) WHERE state IN ('PENDING', 'ACTIVE') AND end_time_ms IS NOT NULL;
