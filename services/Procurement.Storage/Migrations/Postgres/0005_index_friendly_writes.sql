-- PostgreSQL twin of Sqlite/0005_index_friendly_writes.sql; same numbering, same semantics.
-- An index keyed first by contract or by a random id costs every admission decision a leaf page of
-- its own. A contract's open allocations are all anyone looks up by contract and state, so the index
-- holds only those; and request ids lead the idempotency key, so time-ordered ids (UUIDv7, as the
-- client library makes them) append to one leaf.
DROP INDEX ix_allocations_contract_state;
CREATE INDEX ix_allocations_contract_open ON allocations (contract_id) WHERE state IN ('PENDING', 'ACTIVE');

ALTER TABLE idempotency_records DROP CONSTRAINT idempotency_records_pkey, ADD PRIMARY KEY (request_id, scope);
