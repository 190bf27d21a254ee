//! How a block of older events is stored (migration 0032): the events of a
//! stretch of the stream, in stream order, as one zstd frame (level
//! [`LEVEL`], content checksum on). Nomad repeats whole objects from one
//! event to the next, which a frame per event cannot use: on the bench's
//! events a block takes a quarter of what a frame per event with its
//! topic's dictionary does (docs/performance.md, "Blocks of older events").
//!
//! The frame's content is a table, then the events' JSON one after the
//! other:
//!
//! ```text
//! count: u32
//! count × (raft_index: i64, length: u32,
//!          topic, namespace, key: each a u16 length and its UTF-8 bytes)
//! the events' bytes, in the table's order
//! ```
//!
//! all little-endian. An event is found by its identity, the raft index,
//! topic, namespace and key that `event_log_identity` makes unique (its
//! position within its frame is not: an archive ingested with a narrow
//! topic filter, then a wider one, holds two events at one position).
//! Decoding checks the frame's checksum and that the table adds up to the
//! bytes after it, so a damaged block is an error, never another event's
//! JSON.

use std::cell::RefCell;
use std::ops::Range;

use zstd::zstd_safe::{self, CCtx, CParameter, DCtx};

use super::codec::DecodeError;

/// zstd's level for a block: written once by `compact`, read often. Level 9
/// takes a block to about 1/29 of its JSON where level 3 gives 1/22.
pub const LEVEL: i32 = 9;

/// A block is closed once it holds this much JSON (or [`MAX_EVENTS`]):
/// about 35 KB compressed, past one SQLite page (a smaller row would leave
/// the rest of its page empty), and a lookup of one event decodes about
/// a millisecond's worth.
pub const TARGET_BYTES: usize = 1 << 20;

/// At most this many events to a block.
pub const MAX_EVENTS: usize = 4_096;

/// The most a block may decode to: a block holds [`TARGET_BYTES`] and one
/// more event, and an event is capped far below this.
const MAX_BLOCK_BYTES: usize = 1 << 30;

/// One event of a block, as written.
#[derive(Debug, Clone, Copy)]
pub struct Packed<'a> {
    pub id: Identity<'a>,
    pub json: &'a [u8],
}

/// What names an event in its cluster (`event_log_identity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity<'a> {
    pub raft_index: i64,
    pub topic: &'a str,
    pub namespace: &'a str,
    pub key: &'a str,
}

/// The frame of `events`, in the order given (stream order).
pub fn pack(events: &[Packed<'_>]) -> Result<Vec<u8>, String> {
    let count = u32::try_from(events.len()).map_err(|_| "too many events".to_owned())?;
    let body: usize = events.iter().map(|e| e.json.len() + 64).sum();
    let mut content = Vec::with_capacity(4 + body);
    content.extend_from_slice(&count.to_le_bytes());
    for e in events {
        let length = u32::try_from(e.json.len()).map_err(|_| "an event too large".to_owned())?;
        content.extend_from_slice(&e.id.raft_index.to_le_bytes());
        content.extend_from_slice(&length.to_le_bytes());
        for text in [e.id.topic, e.id.namespace, e.id.key] {
            let n = u16::try_from(text.len()).map_err(|_| "an ID too long".to_owned())?;
            content.extend_from_slice(&n.to_le_bytes());
            content.extend_from_slice(text.as_bytes());
        }
    }
    for e in events {
        content.extend_from_slice(e.json);
    }
    let mut cctx = CCtx::create();
    cctx.set_parameter(CParameter::ChecksumFlag(true))
        .map_err(zstd_error)?;
    cctx.set_parameter(CParameter::CompressionLevel(LEVEL))
        .map_err(zstd_error)?;
    let mut out = Vec::with_capacity(zstd_safe::compress_bound(content.len()));
    cctx.compress2(&mut out, &content).map_err(zstd_error)?;
    Ok(out)
}

/// One entry of a decoded block's table.
#[derive(Debug)]
struct Entry {
    raft_index: i64,
    /// Topic, namespace and key, as ranges of the block's bytes.
    ids: [Range<usize>; 3],
    /// The event's JSON.
    json: Range<usize>,
}

/// A block decoded: its table and its bytes.
#[derive(Debug)]
pub struct Block {
    /// In stream order, so by raft index.
    entries: Vec<Entry>,
    bytes: Vec<u8>,
}

impl Block {
    /// Decodes a stored frame, checking its checksum and its table.
    pub fn unpack(stored: &[u8]) -> Result<Block, DecodeError> {
        let damaged = |detail: &str| DecodeError::Damaged(format!("its block {detail}"));
        let size = match zstd_safe::get_frame_content_size(stored) {
            Ok(Some(size)) => usize::try_from(size).map_err(|_| damaged("is too large"))?,
            _ => return Err(damaged("is not a zstd frame with its size")),
        };
        if size > MAX_BLOCK_BYTES {
            return Err(damaged("claims more bytes than a block holds"));
        }
        let mut content = Vec::with_capacity(size);
        DCTX.with_borrow_mut(|dctx| dctx.decompress(&mut content, stored))
            .map_err(|code| DecodeError::Damaged(format!("its block: {}", zstd_error(code))))?;
        Block::read_table(content).ok_or_else(|| damaged("has a table that does not add up"))
    }

    /// Splits decoded content into its table and bytes.
    fn read_table(content: Vec<u8>) -> Option<Block> {
        let mut at: usize = 0;
        let mut take = |n: usize| -> Option<Range<usize>> {
            let end = at.checked_add(n)?;
            (end <= content.len()).then(|| std::mem::replace(&mut at, end)..end)
        };
        let count =
            usize::try_from(u32::from_le_bytes(content.get(take(4)?)?.try_into().ok()?)).ok()?;
        let mut entries = Vec::with_capacity(count.min(MAX_EVENTS));
        let mut lengths = Vec::with_capacity(count.min(MAX_EVENTS));
        for _ in 0..count {
            let raft_index = i64::from_le_bytes(content.get(take(8)?)?.try_into().ok()?);
            let length = u32::from_le_bytes(content.get(take(4)?)?.try_into().ok()?);
            let mut text = || -> Option<Range<usize>> {
                let n = u16::from_le_bytes(content.get(take(2)?)?.try_into().ok()?);
                take(usize::from(n))
            };
            let ids = [text()?, text()?, text()?];
            lengths.push(usize::try_from(length).ok()?);
            entries.push(Entry {
                raft_index,
                ids,
                json: 0..0,
            });
        }
        for (entry, length) in entries.iter_mut().zip(lengths) {
            entry.json = take(length)?;
        }
        (take(0)?.start == content.len()).then_some(Block {
            entries,
            bytes: content,
        })
    }

    /// The JSON of the event `id`.
    pub fn event(&self, id: &Identity<'_>) -> Result<String, DecodeError> {
        let from = self
            .entries
            .partition_point(|e| e.raft_index < id.raft_index);
        let found = self.entries[from..]
            .iter()
            .take_while(|e| e.raft_index == id.raft_index)
            .find(|e| {
                self.ids(e)
                    == [
                        id.topic.as_bytes(),
                        id.namespace.as_bytes(),
                        id.key.as_bytes(),
                    ]
            })
            .ok_or(DecodeError::NotInBlock)?;
        String::from_utf8(self.bytes[found.json.clone()].to_vec()).map_err(|_| DecodeError::NotText)
    }

    /// An entry's topic, namespace and key.
    fn ids(&self, entry: &Entry) -> [&[u8]; 3] {
        entry.ids.clone().map(|r| &self.bytes[r])
    }

    /// Bytes it holds decoded, for the cache's budget.
    pub fn decoded_bytes(&self) -> usize {
        self.bytes.len()
    }
}

thread_local! {
    /// A decompression context per thread, reused for every block.
    static DCTX: RefCell<DCtx<'static>> = RefCell::new(DCtx::create());
}

fn zstd_error(code: usize) -> String {
    zstd_safe::get_error_name(code).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events of a hundred raft indexes, three to each.
    fn events() -> Vec<(i64, String, String)> {
        (0..300)
            .map(|i| {
                let key = format!("a-{}", i % 17);
                let json = format!(
                    r#"{{"Topic":"Allocation","Key":"{key}","Index":{i},"Payload":{{"Status":"running"}}}}"#
                );
                (1_000 + i / 3, key, json)
            })
            .collect()
    }

    fn id<'a>(raft_index: i64, key: &'a str) -> Identity<'a> {
        Identity {
            raft_index,
            topic: "Allocation",
            namespace: "default",
            key,
        }
    }

    fn packed(events: &[(i64, String, String)]) -> Vec<u8> {
        let list: Vec<Packed<'_>> = events
            .iter()
            .map(|(raft_index, key, json)| Packed {
                id: id(*raft_index, key),
                json: json.as_bytes(),
            })
            .collect();
        pack(&list).expect("pack")
    }

    #[test]
    fn every_event_of_a_block_reads_back_as_written() {
        let events = events();
        let block = Block::unpack(&packed(&events)).expect("unpack");
        for (raft_index, key, json) in &events {
            assert_eq!(&block.event(&id(*raft_index, key)).expect("event"), json);
        }
        assert!(block.decoded_bytes() > events.iter().map(|e| e.2.len()).sum::<usize>());
    }

    #[test]
    fn an_event_the_block_does_not_hold_is_an_error() {
        let block = Block::unpack(&packed(&events())).expect("unpack");
        assert_eq!(block.event(&id(1_000, "a-3")), Err(DecodeError::NotInBlock));
        assert_eq!(block.event(&id(999, "a-0")), Err(DecodeError::NotInBlock));
        let other_topic = Identity {
            topic: "Job",
            ..id(1_000, "a-0")
        };
        assert_eq!(block.event(&other_topic), Err(DecodeError::NotInBlock));
    }

    #[test]
    fn a_flipped_byte_or_a_cut_frame_is_damage() {
        let stored = packed(&events());
        let mut flipped = stored.clone();
        let at = flipped.len() / 2;
        flipped[at] ^= 0x10;
        assert!(matches!(
            Block::unpack(&flipped),
            Err(DecodeError::Damaged(_))
        ));
        assert!(matches!(
            Block::unpack(&stored[..stored.len() - 9]),
            Err(DecodeError::Damaged(_))
        ));
        assert!(matches!(
            Block::unpack(b"{\"not\":\"zstd\"}"),
            Err(DecodeError::Damaged(_))
        ));
    }

    #[test]
    fn a_table_that_does_not_add_up_is_refused() {
        // One event of index 7, topic "J", no namespace, key "k", 2 bytes.
        let mut content = 1u32.to_le_bytes().to_vec();
        content.extend_from_slice(&7i64.to_le_bytes());
        content.extend_from_slice(&2u32.to_le_bytes());
        for text in ["J", "", "k"] {
            content.extend_from_slice(&(text.len() as u16).to_le_bytes());
            content.extend_from_slice(text.as_bytes());
        }
        assert!(Block::read_table(content.clone()).is_none());
        content.extend_from_slice(b"{}");
        let block = Block::read_table(content.clone()).expect("adds up");
        let found = Identity {
            raft_index: 7,
            topic: "J",
            namespace: "",
            key: "k",
        };
        assert_eq!(block.event(&found).as_deref(), Ok("{}"));
        content.push(b'x');
        assert!(Block::read_table(content).is_none());
    }
}
