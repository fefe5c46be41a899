-- Capacity blocks: time-boxed, prepaid additions to one contract's reservation in one pool
-- (docs/design.md, "Capacity blocks"). The price per GPU-hour is rate_micros × index_factor, both
-- fixed at booking. A block's events share the allocation event log, with the block's id where an
-- allocation's would be (their types, BLOCK_STARTED and BLOCK_ENDED, say which it is), so the log
-- no longer references allocations: SQLite cannot drop a reference in place, so the log is rebuilt
-- once here, keeping every row and its number.
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

CREATE TABLE allocation_events_new (
    seq            INTEGER NOT NULL PRIMARY KEY,
    occurred_at_ms INTEGER NOT NULL,
    type           TEXT    NOT NULL,
    cause          TEXT    NOT NULL,
    -- The allocation, or for BLOCK_STARTED and BLOCK_ENDED the capacity block.
    allocation_id  TEXT    NOT NULL,
    contract_id    TEXT    NOT NULL,
    tenant_id      TEXT    NOT NULL,
    pool_id        TEXT    NOT NULL,
    units          INTEGER NOT NULL,
    -- The allocation's state after the event, or the block's.
    state          TEXT    NOT NULL,
    -- For PREEMPTED: the allocation whose admission took the units.
    preempted_by   TEXT    NULL
);
INSERT INTO allocation_events_new (seq, occurred_at_ms, type, cause, allocation_id, contract_id, tenant_id, pool_id, units, state, preempted_by)
SELECT seq, occurred_at_ms, type, cause, allocation_id, contract_id, tenant_id, pool_id, units, state, preempted_by FROM allocation_events;
DROP TABLE allocation_events;
ALTER TABLE allocation_events_new RENAME TO allocation_events;

-- A statement splits a contract's held units three ways: guaranteed = min(U, R0), block =
-- min(max(0, U − R0), X) with X the units of its blocks in effect, burst = the rest.
ALTER TABLE usage_totals ADD COLUMN block_unit_ms BIGINT NOT NULL DEFAULT 0;
