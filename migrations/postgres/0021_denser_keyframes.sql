-- Keyframes now follow each other every 2,500 events at least, not 10,000
-- (src/store/keyframe.rs): a snapshot reads at most that many events after
-- its keyframe, which halved `query snapshot --job/--node` at 1M events.
-- Keyframes and their terminal counts are derived data: those built at the
-- old spacing are dropped, and the first writer to open the archive builds
-- them again, with progress on a terminal; reads refuse the archive until
-- then, naming `nomad-chronicle migrate`.
DELETE FROM terminal_counts;
DELETE FROM keyframe_objects;
DELETE FROM keyframes;
