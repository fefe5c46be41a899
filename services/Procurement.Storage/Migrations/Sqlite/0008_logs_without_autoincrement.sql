-- The event and audit logs number their rows as SQLite numbers any rowid table, MAX(seq) + 1, instead
-- of through AUTOINCREMENT. The two differ only once the newest row has been deleted (AUTOINCREMENT
-- never hands its number out again); both logs are append-only, so the numbers are the same: gap-free
-- and, with one writer, in commit order. AUTOINCREMENT cost every append a read and a rewrite of the
-- table's row in sqlite_sequence: one more B-tree per event and per audit record, whose page also
-- went into every unit's savepoint journal. SQLite cannot drop AUTOINCREMENT in place: both tables
-- are rebuilt (a copy of each log, once, at the upgrade), keeping every row and its number.
CREATE TABLE allocation_events_new (
    seq            INTEGER NOT NULL PRIMARY KEY,
    occurred_at_ms INTEGER NOT NULL,
    type           TEXT    NOT NULL,
    cause          TEXT    NOT NULL,
    allocation_id  TEXT    NOT NULL REFERENCES allocations (id),
    contract_id    TEXT    NOT NULL,
    tenant_id      TEXT    NOT NULL,
    pool_id        TEXT    NOT NULL,
    units          INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    -- For PREEMPTED: the allocation whose admission took the units.
    preempted_by   TEXT    NULL
);
INSERT INTO allocation_events_new (seq, occurred_at_ms, type, cause, allocation_id, contract_id, tenant_id, pool_id, units, state, preempted_by)
SELECT seq, occurred_at_ms, type, cause, allocation_id, contract_id, tenant_id, pool_id, units, state, preempted_by FROM allocation_events;
DROP TABLE allocation_events;
ALTER TABLE allocation_events_new RENAME TO allocation_events;

CREATE TABLE audit_events_new (
    seq            INTEGER NOT NULL PRIMARY KEY,
    occurred_at_ms INTEGER NOT NULL,
    key_id         TEXT    NOT NULL,
    role           TEXT    NOT NULL,
    tenant_id      TEXT    NULL,
    method         TEXT    NOT NULL,
    request_id     TEXT    NOT NULL,
    resource_type  TEXT    NOT NULL,
    resource_id    TEXT    NOT NULL
);
INSERT INTO audit_events_new (seq, occurred_at_ms, key_id, role, tenant_id, method, request_id, resource_type, resource_id)
SELECT seq, occurred_at_ms, key_id, role, tenant_id, method, request_id, resource_type, resource_id FROM audit_events;
DROP TABLE audit_events;
ALTER TABLE audit_events_new RENAME TO audit_events;
CREATE INDEX ix_audit_events_resource ON audit_events (resource_type, resource_id, seq);
