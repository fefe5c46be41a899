-- Every admission decision writes into a dozen B-trees, and a group commit writes each changed page
-- once. Pages of append-only keys (seq, time) are shared by the whole group; an index keyed first by
-- contract or by a random id costs every decision a leaf page of its own. Two such indexes change:
--
-- A contract's open allocations are all anyone looks up by contract and state (suspension ends
-- them), so the index holds only those: a few pages that stay hot, where before every transition
-- also wrote the contract's ever-growing list of ended allocations.
-- The event log's tenant and pool indexes served no query: a watch or listing walks the log in
-- sequence order from where it left off and filters as it goes, which is also what SQLite's planner
-- chose for it. The tenant index alone cost every decision a page of its own.
DROP INDEX ix_allocation_events_tenant;
DROP INDEX ix_allocation_events_pool;

DROP INDEX ix_allocations_contract_state;
CREATE INDEX ix_allocations_contract_open ON allocations (contract_id) WHERE state IN ('PENDING', 'ACTIVE');

-- Request ids lead the idempotency key. Clients that make them time-ordered (UUIDv7, as the client
-- library does) then append to one leaf; random ids cost what they did before. Lookups give both
-- columns, so either order serves them. SQLite cannot change a primary key in place: the table is
-- rebuilt.
CREATE TABLE idempotency_records_new (
    scope         TEXT    NOT NULL,
    request_id    TEXT    NOT NULL,
    method        TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    response      BLOB    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (request_id, scope)
);
INSERT INTO idempotency_records_new (scope, request_id, method, request_hash, response, created_at_ms)
SELECT scope, request_id, method, request_hash, response, created_at_ms FROM idempotency_records;
DROP TABLE idempotency_records;
ALTER TABLE idempotency_records_new RENAME TO idempotency_records;
CREATE INDEX ix_idempotency_records_created ON idempotency_records (created_at_ms);
