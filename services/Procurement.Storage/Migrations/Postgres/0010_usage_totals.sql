-- PostgreSQL twin of Sqlite/0010_usage_totals.sql; same numbering, same semantics.
-- What a statement needs, kept per month so its cost does not grow with the month's history.
--
-- usage_totals: per contract, pool and month (its first instant, Unix ms), the integrals of the
-- contract's held units U(t) against its reservation R over the folded part of the month, in
-- unit-milliseconds: guaranteed = ∫ min(U, R), burst = ∫ max(0, U − R); and the busy GPU-seconds its
-- meters reported for windows starting in the month (kept by ingestion, in the sample's transaction).
CREATE TABLE usage_totals (
    contract_id        TEXT   NOT NULL,
    pool_id            TEXT   NOT NULL,
    month_start_ms     BIGINT NOT NULL,
    guaranteed_unit_ms BIGINT NOT NULL DEFAULT 0,
    burst_unit_ms      BIGINT NOT NULL DEFAULT 0,
    busy_gpu_seconds   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (contract_id, month_start_ms, pool_id)
);

-- pool_usage_totals: per pool and month, ∫ allocated units over the folded part, for every contract.
CREATE TABLE pool_usage_totals (
    pool_id           TEXT   NOT NULL,
    month_start_ms    BIGINT NOT NULL,
    allocated_unit_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (pool_id, month_start_ms)
);

-- Each pool's timeline is folded into the totals up to folded_to_ms; a statement adds what is held
-- after it from the allocations themselves (the open ones and those ended since).
CREATE TABLE pool_fold_marks (
    pool_id      TEXT   NOT NULL PRIMARY KEY,
    folded_to_ms BIGINT NOT NULL
);

-- Finds the allocations of a pool that ended after a fold mark.
CREATE INDEX ix_allocations_pool_ended ON allocations (pool_id, ended_at_ms) WHERE ended_at_ms IS NOT NULL;

-- Busy seconds already stored; intervals are folded by the server from the allocations themselves.
INSERT INTO usage_totals (contract_id, pool_id, month_start_ms, busy_gpu_seconds)
SELECT contract_id, pool_id,
       CAST(EXTRACT(EPOCH FROM date_trunc('month', to_timestamp(window_start_ms / 1000) AT TIME ZONE 'UTC')) AS BIGINT) * 1000 AS month_start_ms,
       SUM(busy_gpu_seconds)
FROM usage_samples
GROUP BY contract_id, pool_id, month_start_ms;
