-- PostgreSQL twin of Sqlite/0011_capacity_blocks.sql; same numbering, same semantics.
-- Capacity blocks: time-boxed, prepaid additions to one contract's reservation in one pool
-- (docs/design.md, "Capacity blocks"). The price per GPU-hour is rate_micros × index_factor, both
-- fixed at booking. A block's events share the allocation event log, with the block's id where an
-- allocation's would be (their types, BLOCK_STARTED and BLOCK_ENDED, say which it is).
CREATE TABLE capacity_blocks (
    seq                  BIGINT NOT NULL PRIMARY KEY,
    id                   TEXT   NOT NULL UNIQUE,
    contract_id          TEXT   NOT NULL REFERENCES contracts (id),
    tenant_id            TEXT   NOT NULL,
    pool_id              TEXT   NOT NULL REFERENCES pools (id),
    units                BIGINT NOT NULL CHECK (units > 0),
    start_ms             BIGINT NOT NULL,
    end_ms               BIGINT NOT NULL CHECK (end_ms > start_ms),
    rate_micros          BIGINT NOT NULL CHECK (rate_micros >= 0),
    index_factor         TEXT   NOT NULL,
    state                TEXT   NOT NULL CHECK (state IN ('BOOKED', 'ACTIVE', 'COMPLETED', 'CANCELLED')),
    booked_at_ms         BIGINT NOT NULL,
    cancelled_at_ms      BIGINT NULL,
    cancellation_charged BOOLEAN NOT NULL DEFAULT FALSE,
    revision             BIGINT NOT NULL
);
-- A pool's calendar and the blocks admission counts, by state and start.
CREATE INDEX ix_capacity_blocks_pool_state_start ON capacity_blocks (pool_id, state, start_ms);
CREATE INDEX ix_capacity_blocks_contract_start ON capacity_blocks (contract_id, start_ms);
-- The sweeper's work list: BOOKED blocks by start (and the few ACTIVE ones).
CREATE INDEX ix_capacity_blocks_state_start ON capacity_blocks (state, start_ms);
CREATE SEQUENCE capacity_blocks_seq;
-- The log's subject is an allocation or a block (SQLite does not enforce the reference).
ALTER TABLE allocation_events DROP CONSTRAINT IF EXISTS allocation_events_allocation_id_fkey;

-- A statement splits a contract's held units three ways: guaranteed = min(U, R0), block =
-- min(max(0, U − R0), X) with X the units of its blocks in effect, burst = the rest.
ALTER TABLE usage_totals ADD COLUMN block_unit_ms BIGINT NOT NULL DEFAULT 0;
