-- Two more indexes of allocations keep only what they are asked for, so a decision writes fewer
-- B-trees and a group commit fewer pages (each page costs the WAL write, the fsync's share and the
-- checkpoint's copy).
--
-- The pool index serves only the writer's load of a pool's ACTIVE and PENDING allocations (listings
-- walk allocations in sequence order). Over every state, each transition moved an entry and a release
-- wrote a second leaf among the pool's ever-growing ended allocations; over open ones it stays a few
-- hot pages, as the per-contract index of open allocations already does.
DROP INDEX ix_allocations_pool_state;
CREATE INDEX ix_allocations_pool_open ON allocations (pool_id, state) WHERE state IN ('PENDING', 'ACTIVE');

-- The end-time index serves only the sweeper's search for open allocations that are due. An
-- allocation without an end time, or one that has ended, is no longer written into it at all.
DROP INDEX ix_allocations_state_end;
CREATE INDEX ix_allocations_due ON allocations (end_time_ms) WHERE state IN ('PENDING', 'ACTIVE') AND end_time_ms IS NOT NULL;
