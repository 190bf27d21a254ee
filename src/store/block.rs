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
//! count × (raft_index: i64, position: i32, length: u32)
//! the events' bytes, in the table's order
//! ```
//!
//! all little-endian. Decoding checks the frame's checksum and that the
//! table adds up to the bytes after it, so a damaged block is an error,
//! never another event's JSON.

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

/// Bytes of one table entry.
const ENTRY: usize = 8 + 4 + 4;

/// One event of a block, as written.
#[derive(Debug, Clone, Copy)]
pub struct Packed<'a> {
    pub raft_index: i64,
    pub position: i32,
    pub json: &'a [u8],
}

/// The frame of `events`, in the order given.
pub fn pack(events: &[Packed<'_>]) -> Result<Vec<u8>, String> {
    let count = u32::try_from(events.len()).map_err(|_| "too many events".to_owned())?;
    let body: usize = events.iter().map(|e| e.json.len()).sum();
    let mut content = Vec::with_capacity(4 + events.len() * ENTRY + body);
    content.extend_from_slice(&count.to_le_bytes());
    for e in events {
        let length = u32::try_from(e.json.len()).map_err(|_| "an event too large".to_owned())?;
        content.extend_from_slice(&e.raft_index.to_le_bytes());
        content.extend_from_slice(&e.position.to_le_bytes());
        content.extend_from_slice(&length.to_le_bytes());
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

/// A block decoded: its events' places and bytes.
#[derive(Debug)]
pub struct Block {
    /// `(raft_index, position)` of each event, in stream order.
    keys: Vec<(i64, i32)>,
    /// Where each event's bytes lie in `bytes`.
    spans: Vec<Range<usize>>,
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
        let count = usize::try_from(u32::from_le_bytes(content.get(..4)?.try_into().ok()?)).ok()?;
        let table_end = count.checked_mul(ENTRY)?.checked_add(4)?;
        let table = content.get(4..table_end)?;
        let mut keys = Vec::with_capacity(count);
        let mut spans = Vec::with_capacity(count);
        let mut at = table_end;
        for entry in table.chunks_exact(ENTRY) {
            let raft_index = i64::from_le_bytes(entry[..8].try_into().ok()?);
            let position = i32::from_le_bytes(entry[8..12].try_into().ok()?);
            let length = usize::try_from(u32::from_le_bytes(entry[12..].try_into().ok()?)).ok()?;
            let end = at.checked_add(length)?;
            keys.push((raft_index, position));
            spans.push(at..end);
            at = end;
        }
        (at == content.len()).then_some(Block {
            keys,
            spans,
            bytes: content,
        })
    }

    /// The JSON of the event at `(raft_index, position)`.
    pub fn event(&self, raft_index: i64, position: i32) -> Result<String, DecodeError> {
        let found = self.keys.binary_search(&(raft_index, position));
        let span = found
            .ok()
            .and_then(|i| self.spans.get(i))
            .ok_or(DecodeError::NotInBlock)?;
        String::from_utf8(self.bytes[span.clone()].to_vec()).map_err(|_| DecodeError::NotText)
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

    fn events() -> Vec<(i64, i32, String)> {
        (0..300)
            .map(|i| {
                let json = format!(
                    r#"{{"Topic":"Allocation","Key":"a-{}","Index":{i},"Payload":{{"Status":"running"}}}}"#,
                    i % 17
                );
                (1_000 + i / 3, (i % 3) as i32, json)
            })
            .collect()
    }

    fn packed(events: &[(i64, i32, String)]) -> Vec<u8> {
        let list: Vec<Packed<'_>> = events
            .iter()
            .map(|(raft_index, position, json)| Packed {
                raft_index: *raft_index,
                position: *position,
                json: json.as_bytes(),
            })
            .collect();
        pack(&list).expect("pack")
    }

    #[test]
    fn every_event_of_a_block_reads_back_as_written() {
        let events = events();
        let block = Block::unpack(&packed(&events)).expect("unpack");
        for (raft_index, position, json) in &events {
            assert_eq!(&block.event(*raft_index, *position).expect("event"), json);
        }
        assert!(block.decoded_bytes() > events.iter().map(|e| e.2.len()).sum::<usize>());
    }

    #[test]
    fn an_event_the_block_does_not_hold_is_an_error() {
        let block = Block::unpack(&packed(&events())).expect("unpack");
        assert_eq!(block.event(1_000, 3), Err(DecodeError::NotInBlock));
        assert_eq!(block.event(999, 0), Err(DecodeError::NotInBlock));
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
        let mut content = 2u32.to_le_bytes().to_vec();
        content.extend_from_slice(&[0; ENTRY]);
        assert!(Block::read_table(content.clone()).is_none());
        content.extend_from_slice(&[0; ENTRY]);
        assert!(Block::read_table(content.clone()).is_some());
        content.push(b'x');
        assert!(Block::read_table(content).is_none());
    }
}
