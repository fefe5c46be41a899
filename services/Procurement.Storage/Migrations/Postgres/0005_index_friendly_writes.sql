-- PostgreSQL twin of Sqlite/0005_index_friendly_writes.sql; same numbering, same semantics.
-- An index keyed first by contract or by a random id costs every admission decision a leaf page of
-- its own. A contract's open allocations are all anyone looks up by contract and state, so the index
-- holds only those; and request ids lead the idempotency key, so time-ordered ids (UUIDv7, as the
-- client library makes them) append to one leaf.
-- The event log's tenant and pool indexes go, as on SQLite, where its planner never used them: a
-- watch or listing walks the log in sequence order from where it left off and filters as it goes.
-- The tenant index alone cost every decision a page of its own.
DROP INDEX ix_allocation_events_tenant;
DROP INDEX ix_allocation_events_pool;

DROP INDEX ix_allocations_contract_state;
CREATE INDEX ix_allocations_contract_open ON allocations (contract_id) WHERE state IN ('PENDING', 'ACTIVE');

ALTER TABLE idempotency_records DROP CONSTRAINT idempotency_records_pkey, ADD PRIMARY KEY (request_id, scope);
