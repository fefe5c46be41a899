-- Idempotency records are found and kept by their key (request id, scope) alone; as a rowid table
-- every mutation wrote two B-trees for them (the rows, and the key's index pointing at them). Without
-- a rowid the key's B-tree holds the rows: one insert per mutation and one lookup without a second
-- seek. SQLite cannot change a table's kind in place: the table is rebuilt.
CREATE TABLE idempotency_records_new (
    scope         TEXT    NOT NULL,
    request_id    TEXT    NOT NULL,
    method        TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    response      BLOB    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (request_id, scope)
) WITHOUT ROWID;
INSERT INTO idempotency_records_new (scope, request_id, method, request_hash, response, created_at_ms)
SELECT scope, request_id, method, request_hash, response, created_at_ms FROM idempotency_records;
DROP TABLE idempotency_records;
ALTER TABLE idempotency_records_new RENAME TO idempotency_records;
CREATE INDEX ix_idempotency_records_created ON idempotency_records (created_at_ms);
