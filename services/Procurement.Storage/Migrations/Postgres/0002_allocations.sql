-- PostgreSQL twin of Sqlite/0002_allocations.sql; same numbering, same semantics.
CREATE SEQUENCE allocations_seq;
CREATE TABLE allocation_event_counter (id INT NOT NULL PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO allocation_event_counter (id, value) VALUES (1, 0);

-- Allocations, their event log and usage samples.

CREATE TABLE allocations (
    -- From allocations_seq; also the number in the id "alc_<seq>".
    seq             BIGINT NOT NULL PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    contract_id     TEXT    NOT NULL REFERENCES contracts (id),
    tenant_id       TEXT    NOT NULL,
    pool_id         TEXT    NOT NULL REFERENCES pools (id),
    units           BIGINT NOT NULL CHECK (units > 0),
    state           TEXT    NOT NULL CHECK (state IN ('PENDING', 'ACTIVE', 'RELEASED', 'PREEMPTED', 'EXPIRED', 'CANCELLED')),
    cause           TEXT    NOT NULL,
    requested_at_ms BIGINT NOT NULL,
    admitted_at_ms  BIGINT NULL,
    ended_at_ms     BIGINT NULL,
    -- When the allocation ends by itself: fixed, or admission time + duration_ms.
    end_time_ms     BIGINT NULL,
    duration_ms     BIGINT NULL
);
CREATE INDEX ix_allocations_pool_state ON allocations (pool_id, state);
CREATE INDEX ix_allocations_contract_state ON allocations (contract_id, state);
CREATE INDEX ix_allocations_state_end ON allocations (state, end_time_ms);

-- Every transition, in commit order. A watcher resumes from the last sequence it saw.
-- seq comes from allocation_event_counter, whose row lock is held to commit: gap-free in commit order.
CREATE TABLE allocation_events (
    seq            BIGINT  NOT NULL PRIMARY KEY,
    occurred_at_ms BIGINT NOT NULL,
    type           TEXT    NOT NULL,
    cause          TEXT    NOT NULL,
    allocation_id  TEXT    NOT NULL REFERENCES allocations (id),
    contract_id    TEXT    NOT NULL,
    tenant_id      TEXT    NOT NULL,
    pool_id        TEXT    NOT NULL,
    units          BIGINT NOT NULL,
    state          TEXT    NOT NULL,
    -- For PREEMPTED: the allocation whose admission took the units.
    preempted_by   TEXT    NULL
);
CREATE INDEX ix_allocation_events_pool ON allocation_events (pool_id, seq);
CREATE INDEX ix_allocation_events_tenant ON allocation_events (tenant_id, seq);

-- Unique by (source, sample id): a resent sample counts once.
CREATE TABLE usage_samples (
    source           TEXT    NOT NULL,
    sample_id        TEXT    NOT NULL,
    allocation_id    TEXT    NOT NULL REFERENCES allocations (id),
    window_start_ms  BIGINT NOT NULL,
    window_end_ms    BIGINT NOT NULL,
    busy_gpu_seconds BIGINT NOT NULL,
    received_at_ms   BIGINT NOT NULL,
    PRIMARY KEY (source, sample_id)
);
CREATE INDEX ix_usage_samples_allocation ON usage_samples (allocation_id, window_start_ms);
