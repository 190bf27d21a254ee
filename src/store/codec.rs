//! How a compressed event is stored: one zstd frame per event (level 3,
//! content checksum on), compressed with a dictionary trained on its topic
//! (docs/performance.md, "Compressing the archive"). Compressing a batch
//! here is pure CPU work, done before the batch's transaction begins;
//! decoding checks that the frame was made with the dictionary the row names
//! and that its checksum holds, so a damaged value is an error, never wrong
//! JSON.

use std::cell::RefCell;
use std::sync::Arc;

use zstd::zstd_safe::{self, CCtx, CDict, CParameter, DCtx, DDict};

/// zstd's level: 4 µs an event to compress with a 64 KiB dictionary.
pub const LEVEL: i32 = 3;

/// The size a dictionary is trained to (a topic's; 7.5 × on the bench).
pub const DICTIONARY_BYTES: usize = 64 * 1024;

/// The size of a topic's first dictionary, trained on its first few events
/// (compress/mod.rs): what few samples train well.
pub const FIRST_DICTIONARY_BYTES: usize = 16 * 1024;

/// A dictionary stored in the archive, ready to compress and decompress.
pub struct Dictionary {
    /// `dictionaries.id`: what an event row names.
    pub id: i64,
    /// The ID zstd wrote in the dictionary's header, and in every frame
    /// compressed with it.
    pub zstd_id: u32,
    /// Its size.
    pub bytes: usize,
    /// Prepared for compression (level [`LEVEL`]).
    cdict: CDict<'static>,
    /// Prepared for decompression.
    ddict: DDict<'static>,
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary")
            .field("id", &self.id)
            .field("zstd_id", &self.zstd_id)
            .finish_non_exhaustive()
    }
}

impl Dictionary {
    /// Prepares the stored bytes of dictionary `id`; `None` when they are
    /// no zstd dictionary.
    pub fn new(id: i64, bytes: &[u8]) -> Option<Arc<Dictionary>> {
        let zstd_id = zstd_safe::get_dict_id_from_dict(bytes)?.get();
        Some(Arc::new(Dictionary {
            id,
            zstd_id,
            bytes: bytes.len(),
            cdict: zstd_safe::create_cdict(bytes, LEVEL),
            ddict: DDict::create(bytes),
        }))
    }
}

/// Why a stored value could not be read back.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("its dictionary `{0}` is not in the archive's `dictionaries` table")]
    MissingDictionary(i64),
    #[error(
        "its zstd frame names dictionary `{found}`, but dictionary `{id}` of its row is `{expected}`"
    )]
    WrongDictionary { id: i64, found: u32, expected: u32 },
    #[error("the stored value is damaged ({0})")]
    Damaged(String),
    #[error("the decoded event is not UTF-8 text")]
    NotText,
    #[error("its block `{0}` is not in the archive's `event_blocks` table")]
    MissingBlock(i64),
    #[error("its block does not hold it")]
    NotInBlock,
}

/// Compresses events: one zstd context reused for a run of events.
pub struct Encoder<'d> {
    cctx: CCtx<'d>,
    /// Room for the largest frame so far; each frame is copied out of it at
    /// its own size (a batch's frames live until its commit).
    scratch: Vec<u8>,
}

impl<'d> Encoder<'d> {
    pub fn new() -> Result<Self, String> {
        let mut cctx = CCtx::create();
        cctx.set_parameter(CParameter::ChecksumFlag(true))
            .map_err(zstd_error)?;
        Ok(Encoder {
            cctx,
            scratch: Vec::new(),
        })
    }

    /// `raw` as one frame compressed with `dictionary`.
    pub fn compress(&mut self, raw: &[u8], dictionary: &'d Dictionary) -> Result<Vec<u8>, String> {
        self.cctx.ref_cdict(&dictionary.cdict).map_err(zstd_error)?;
        self.scratch.clear();
        self.scratch.reserve(zstd_safe::compress_bound(raw.len()));
        self.cctx
            .compress2(&mut self.scratch, raw)
            .map_err(zstd_error)?;
        Ok(self.scratch.clone())
    }
}

/// Decompresses one stored frame, checking it against `dictionary` (the
/// one its row names).
pub fn decompress(stored: &[u8], dictionary: &Dictionary) -> Result<String, DecodeError> {
    let damaged = |detail: String| DecodeError::Damaged(detail);
    let found = zstd_safe::get_dict_id_from_frame(stored).map_or(0, |id| id.get());
    if found != dictionary.zstd_id {
        // A frame whose header is damaged shows no ID, or another one.
        let size = zstd_safe::get_frame_content_size(stored);
        if found == 0 && !matches!(size, Ok(Some(_))) {
            return Err(damaged("not a zstd frame".to_owned()));
        }
        return Err(DecodeError::WrongDictionary {
            id: dictionary.id,
            found,
            expected: dictionary.zstd_id,
        });
    }
    let size = match zstd_safe::get_frame_content_size(stored) {
        Ok(Some(size)) => usize::try_from(size).map_err(|_| damaged("too large".to_owned()))?,
        _ => return Err(damaged("no content size in its header".to_owned())),
    };
    // Events are at most a few MB; a header claiming more is damage.
    if size > MAX_EVENT_BYTES {
        return Err(damaged(format!("its header claims {size} bytes")));
    }
    let mut out = Vec::with_capacity(size);
    DCTX.with_borrow_mut(|dctx| dctx.decompress_using_ddict(&mut out, stored, &dictionary.ddict))
        .map_err(|code| damaged(zstd_error(code)))?;
    String::from_utf8(out).map_err(|_| DecodeError::NotText)
}

thread_local! {
    /// A decompression context per thread, reused for every event: creating
    /// one allocates about 100 KB, which took longer than decoding the event
    /// (a node's timeline at 1M events ran 1.5–3 × slower with one per
    /// event). A context keeps no state from one frame to the next.
    static DCTX: RefCell<DCtx<'static>> = RefCell::new(DCtx::create());
}

/// The largest event a frame may decode to (an event stream line is capped
/// far below this).
const MAX_EVENT_BYTES: usize = 1 << 30;

/// zstd's name for an error code.
fn zstd_error(code: usize) -> String {
    zstd_safe::get_error_name(code).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trained() -> Arc<Dictionary> {
        let samples: Vec<String> = (0..400)
            .map(|i| {
                format!(
                    r#"{{"Topic":"Job","Type":"JobRegistered","Key":"job-{i}","Index":{i},"Payload":{{"Job":{{"ID":"job-{i}","Status":"running","Version":{}}}}}}}"#,
                    i % 7
                )
            })
            .collect();
        let bytes = zstd::dict::from_samples(&samples, 4096).expect("train");
        Dictionary::new(1, &bytes).expect("a dictionary")
    }

    #[test]
    fn an_event_compressed_with_its_dictionary_decodes_to_the_same_bytes() {
        let dict = trained();
        let raw = r#"{"Topic":"Job","Type":"JobRegistered","Key":"web","Index":9001}"#;
        let stored = Encoder::new()
            .and_then(|mut e| e.compress(raw.as_bytes(), &dict))
            .expect("compress");
        assert_eq!(decompress(&stored, &dict).expect("decode"), raw);
    }

    #[test]
    fn a_flipped_byte_is_damage_not_other_json() {
        let dict = trained();
        let raw = r#"{"Topic":"Job","Type":"JobRegistered","Key":"web","Index":9001}"#;
        let mut stored = Encoder::new()
            .and_then(|mut e| e.compress(raw.as_bytes(), &dict))
            .expect("compress");
        let last = stored.len() - 6;
        stored[last] ^= 0x40;
        assert!(matches!(
            decompress(&stored, &dict),
            Err(DecodeError::Damaged(_))
        ));
    }

    #[test]
    fn a_frame_of_another_dictionary_is_refused() {
        let dict = trained();
        let other_bytes = zstd::dict::from_samples(
            &(0..400)
                .map(|i| format!(r#"{{"Topic":"Node","Key":"n{i}","Name":"client-{i}"}}"#))
                .collect::<Vec<_>>(),
            4096,
        )
        .expect("train");
        let other = Dictionary::new(2, &other_bytes).expect("a dictionary");
        let stored = Encoder::new()
            .and_then(|mut e| e.compress(br#"{"Topic":"Node"}"#, &other))
            .expect("compress");
        assert!(matches!(
            decompress(&stored, &dict),
            Err(DecodeError::WrongDictionary { id: 1, .. })
        ));
    }
}
