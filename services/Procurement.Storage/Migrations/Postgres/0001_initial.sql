-- PostgreSQL twin of Sqlite/0001_initial.sql; same numbering, same semantics.
-- Money is integer micros, times are integer Unix milliseconds (UTC).

CREATE TABLE pools (
    id               TEXT    NOT NULL PRIMARY KEY,
    display_name     TEXT    NOT NULL,
    region           TEXT    NOT NULL,
    accelerator_type TEXT    NOT NULL,
    capacity_units   BIGINT NOT NULL CHECK (capacity_units >= 0),
    revision         BIGINT NOT NULL,
    created_at_ms    BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL
);

-- Every capacity a pool has had, from when: utilization and SLA arithmetic use capacity as it was.
CREATE TABLE pool_capacity_changes (
    seq             BIGSERIAL PRIMARY KEY,
    pool_id         TEXT    NOT NULL REFERENCES pools (id),
    effective_at_ms BIGINT NOT NULL,
    capacity_units  BIGINT NOT NULL CHECK (capacity_units >= 0)
);
CREATE INDEX ix_pool_capacity_changes_pool ON pool_capacity_changes (pool_id, effective_at_ms);

CREATE TABLE contracts (
    seq              BIGSERIAL PRIMARY KEY,
    id               TEXT    NOT NULL UNIQUE,
    tenant_id        TEXT    NOT NULL,
    display_name     TEXT    NOT NULL,
    -- DRAFT | ACTIVE | SUSPENDED | TERMINATED; EXPIRED is derived from end_ms when read.
    state            TEXT    NOT NULL CHECK (state IN ('DRAFT', 'ACTIVE', 'SUSPENDED', 'TERMINATED')),
    revision         BIGINT NOT NULL,
    -- The term end of the latest terms version.
    end_ms           BIGINT NOT NULL,
    created_at_ms    BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL,
    activated_at_ms  BIGINT NULL,
    terminated_at_ms BIGINT NULL,
    state_reason     TEXT    NULL
);
CREATE INDEX ix_contracts_tenant ON contracts (tenant_id, seq);

CREATE TABLE contract_versions (
    contract_id       TEXT    NOT NULL REFERENCES contracts (id),
    version           BIGINT NOT NULL,
    effective_from_ms BIGINT NOT NULL,
    terms_json        TEXT    NOT NULL,
    created_at_ms     BIGINT NOT NULL,
    PRIMARY KEY (contract_id, version)
);

-- The entitlements of each terms version, kept as rows for capacity checks and admission.
CREATE TABLE contract_entitlements (
    contract_id       TEXT    NOT NULL,
    version           BIGINT NOT NULL,
    pool_id           TEXT    NOT NULL REFERENCES pools (id),
    reserved_units    BIGINT NOT NULL CHECK (reserved_units >= 0),
    burst_limit_units BIGINT NOT NULL CHECK (burst_limit_units >= 0),
    PRIMARY KEY (contract_id, version, pool_id),
    FOREIGN KEY (contract_id, version) REFERENCES contract_versions (contract_id, version)
);
CREATE INDEX ix_contract_entitlements_pool ON contract_entitlements (pool_id);

CREATE TABLE api_keys (
    id            TEXT    NOT NULL PRIMARY KEY,
    -- SHA-256 of the key, hex. The key itself is never stored.
    key_hash      TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL CHECK (role IN ('operator', 'customer', 'meter')),
    tenant_id     TEXT    NULL,
    label         TEXT    NULL,
    created_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT NULL,
    CHECK ((role = 'customer') = (tenant_id IS NOT NULL))
);

-- The first response to each request_id, written in the same transaction as the change.
CREATE TABLE idempotency_records (
    scope         TEXT    NOT NULL,
    request_id    TEXT    NOT NULL,
    method        TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    response      BYTEA    NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, request_id)
);
CREATE INDEX ix_idempotency_records_created ON idempotency_records (created_at_ms);

-- Append-only record of every committed mutation.
CREATE TABLE audit_events (
    seq           BIGSERIAL PRIMARY KEY,
    occurred_at_ms BIGINT NOT NULL,
    key_id        TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    tenant_id     TEXT    NULL,
    method        TEXT    NOT NULL,
    request_id    TEXT    NOT NULL,
    resource_type TEXT    NOT NULL,
    resource_id   TEXT    NOT NULL
);
CREATE INDEX ix_audit_events_resource ON audit_events (resource_type, resource_id, seq);
