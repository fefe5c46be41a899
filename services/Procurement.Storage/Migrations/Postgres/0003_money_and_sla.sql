-- PostgreSQL twin of Sqlite/0003_money_and_sla.sql; same numbering, same semantics.
CREATE SEQUENCE incidents_seq;

-- Index values, incidents, and what statements read.

-- Immutable once published: statements that used a value must recompute to the same bytes.
CREATE TABLE index_values (
    index_name      TEXT    NOT NULL,
    effective_at_ms BIGINT NOT NULL,
    -- A decimal string, exact.
    value           TEXT    NOT NULL,
    published_at_ms BIGINT NOT NULL,
    PRIMARY KEY (index_name, effective_at_ms)
);

CREATE TABLE incidents (
    seq              BIGINT NOT NULL PRIMARY KEY,
    id               TEXT    NOT NULL UNIQUE,
    pool_id          TEXT    NOT NULL REFERENCES pools (id),
    kind             TEXT    NOT NULL CHECK (kind IN ('OUTAGE', 'DEGRADED', 'MAINTENANCE')),
    start_ms         BIGINT NOT NULL,
    end_ms           BIGINT NULL,
    affected_units   BIGINT NOT NULL CHECK (affected_units > 0),
    announced_at_ms  BIGINT NULL,
    created_at_ms    BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL
);
CREATE INDEX ix_incidents_pool_start ON incidents (pool_id, start_ms);

-- A contract's allocation intervals in a month.
CREATE INDEX ix_allocations_contract_admitted ON allocations (contract_id, admitted_at_ms);
-- A pool's allocated GPU-hours in a month.
CREATE INDEX ix_allocations_pool_admitted ON allocations (pool_id, admitted_at_ms);
