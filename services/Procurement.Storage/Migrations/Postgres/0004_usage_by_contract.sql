-- PostgreSQL twin of Sqlite/0004_usage_by_contract.sql; same numbering, same semantics.
-- A statement sums a contract's busy GPU-seconds per pool over a month. Each sample carries its
-- allocation's contract and pool so that sum is one range of one covering index, instead of a join
-- that visits every allocation of the contract and then each of its samples.
ALTER TABLE usage_samples ADD COLUMN contract_id TEXT NOT NULL DEFAULT '';
ALTER TABLE usage_samples ADD COLUMN pool_id TEXT NOT NULL DEFAULT '';
UPDATE usage_samples u
SET contract_id = a.contract_id, pool_id = a.pool_id
FROM allocations a WHERE a.id = u.allocation_id;
DROP INDEX ix_usage_samples_allocation;
CREATE INDEX ix_usage_samples_contract_pool ON usage_samples (contract_id, pool_id, window_start_ms, busy_gpu_seconds);
