-- The allocations whose life spans at least 16,384 raft indexes from its
-- first event to its last, by their last index: the web timeline finds
-- the allocations that cross the end of a window among the lives that end
-- within 16,384 indexes after it (`allocation_lives_by_last`) and these,
-- rather than among every life that ends after it (src/store/lanes.rs,
-- `crossing`; the constant is `LONG_LIFE` there). Long-running services;
-- a few bytes for each.
CREATE INDEX allocation_lives_long
    ON allocation_lives (cluster_id, last_index, first_index)
    WHERE last_index - first_index >= 16384;
