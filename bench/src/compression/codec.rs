//! The candidate encodings of the archive's events: what each stores, how a
//! point lookup and a sequential read decode it. Every decode is checked
//! against the original bytes by the caller.

use std::collections::HashMap;
use std::io;

use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

use super::corpus::Event;

/// How events are turned into stored values.
pub enum Scheme {
    /// Each event alone.
    Plain { level: i32 },
    /// Each event alone, with the dictionary of its topic (`""` is a
    /// dictionary shared by every topic without its own); a topic with
    /// neither is compressed without one.
    Dict {
        level: i32,
        dicts: HashMap<String, Vec<u8>>,
    },
    /// `events` consecutive events per value: their lengths (u32 LE) then
    /// their bytes, compressed together.
    Block { level: i32, events: usize },
    /// Each event with its object's previous event as the dictionary;
    /// `depths[i]` = 0 marks a base, compressed alone.
    Delta {
        level: i32,
        previous: Vec<Option<usize>>,
        depths: Vec<usize>,
    },
}

/// The stored values of one encoding.
pub struct Packed {
    pub values: Vec<Vec<u8>>,
}

impl Scheme {
    /// Encodes every event.
    pub fn pack(&self, events: &[Event]) -> io::Result<Packed> {
        let values = match self {
            Scheme::Plain { level } => {
                let mut c = Compressor::new(*level)?;
                events
                    .iter()
                    .map(|e| c.compress(&e.json))
                    .collect::<io::Result<_>>()?
            }
            Scheme::Dict { level, dicts } => {
                let prepared = prepare_encoders(dicts, *level);
                let mut by_topic: HashMap<&str, Compressor> = HashMap::new();
                let mut values = Vec::with_capacity(events.len());
                for e in events {
                    let c = match by_topic.get_mut(e.topic.as_str()) {
                        Some(c) => c,
                        None => {
                            let c = match dictionary_for(&prepared, &e.topic) {
                                Some(d) => Compressor::with_prepared_dictionary(d)?,
                                None => Compressor::new(*level)?,
                            };
                            by_topic.entry(e.topic.as_str()).or_insert(c)
                        }
                    };
                    values.push(c.compress(&e.json)?);
                }
                values
            }
            Scheme::Block { level, events: k } => {
                let mut c = Compressor::new(*level)?;
                events
                    .chunks(*k)
                    .map(|chunk| c.compress(&block_bytes(chunk)))
                    .collect::<io::Result<_>>()?
            }
            Scheme::Delta {
                level,
                previous,
                depths,
            } => {
                let mut plain = Compressor::new(*level)?;
                let mut delta = Compressor::new(*level)?;
                let mut values = Vec::with_capacity(events.len());
                for (i, e) in events.iter().enumerate() {
                    match previous[i].filter(|_| depths[i] > 0) {
                        Some(p) => {
                            delta.set_dictionary(*level, &events[p].json)?;
                            values.push(delta.compress(&e.json)?);
                        }
                        None => values.push(plain.compress(&e.json)?),
                    }
                }
                values
            }
        };
        Ok(Packed { values })
    }

    /// The prepared decoding dictionaries of a [`Scheme::Dict`], loaded
    /// once as the archive would load them when it opens.
    pub fn decoders(&self) -> Decoders {
        match self {
            Scheme::Dict { dicts, .. } => dicts
                .iter()
                .map(|(t, d)| (t.clone(), DecoderDictionary::copy(d)))
                .collect(),
            _ => HashMap::new(),
        }
    }

    /// A reader of `packed`.
    pub fn reader<'a>(
        &'a self,
        packed: &'a Packed,
        events: &'a [Event],
        decoders: &'a Decoders,
    ) -> io::Result<Reader<'a>> {
        Ok(Reader {
            scheme: self,
            packed,
            events,
            decoders,
            plain: Decompressor::new()?,
            with_dict: Decompressor::new()?,
        })
    }
}

/// Prepared decoding dictionaries by topic (`""`: shared).
pub type Decoders = HashMap<String, DecoderDictionary<'static>>;

/// Decodes events of one encoding. It reads each event's topic and length
/// from `events`, as the archive would read them from the row.
pub struct Reader<'a> {
    scheme: &'a Scheme,
    packed: &'a Packed,
    events: &'a [Event],
    decoders: &'a Decoders,
    plain: Decompressor<'a>,
    /// Decodes with a topic's dictionary, set before each event (a
    /// reference to the prepared dictionary: no copy).
    with_dict: Decompressor<'a>,
}

impl<'a> Reader<'a> {
    /// Event `i` alone, as `query state` reads one event.
    pub fn lookup(&mut self, i: usize) -> io::Result<Vec<u8>> {
        let capacity = self.events[i].json.len();
        match self.scheme {
            Scheme::Plain { .. } => self.plain.decompress(&self.packed.values[i], capacity),
            Scheme::Dict { .. } => self.decode_with_dictionary(i),
            Scheme::Block { events: k, .. } => {
                let block = self.block(i / k)?;
                Ok(event_in_block(&block, i % k).to_vec())
            }
            Scheme::Delta {
                previous, depths, ..
            } => {
                let mut chain = vec![i];
                while depths[*chain.last().unwrap_or(&i)] > 0 {
                    let last = chain[chain.len() - 1];
                    match previous[last] {
                        Some(p) => chain.push(p),
                        None => break,
                    }
                }
                let base = chain.pop().unwrap_or(i);
                let mut raw = self
                    .plain
                    .decompress(&self.packed.values[base], self.events[base].json.len())?;
                let mut d = Decompressor::new()?;
                for j in chain.into_iter().rev() {
                    d.set_dictionary(&raw)?;
                    raw = d.decompress(&self.packed.values[j], self.events[j].json.len())?;
                }
                Ok(raw)
            }
        }
    }

    /// Every event in order, as `replay` reads them; `each` sees event `i`'s
    /// bytes.
    pub fn replay(&mut self, mut each: impl FnMut(usize, &[u8])) -> io::Result<()> {
        let n = self.events.len();
        match self.scheme {
            Scheme::Plain { .. } => {
                for i in 0..n {
                    let raw = self
                        .plain
                        .decompress(&self.packed.values[i], self.events[i].json.len())?;
                    each(i, &raw);
                }
            }
            Scheme::Dict { .. } => {
                for i in 0..n {
                    let raw = self.decode_with_dictionary(i)?;
                    each(i, &raw);
                }
            }
            Scheme::Block { events: k, .. } => {
                for b in 0..self.packed.values.len() {
                    let block = self.block(b)?;
                    for j in 0..(n - b * k).min(*k) {
                        each(b * k + j, event_in_block(&block, j));
                    }
                }
            }
            Scheme::Delta {
                previous, depths, ..
            } => {
                let mut pending: HashMap<usize, Vec<u8>> = HashMap::new();
                let mut d = Decompressor::new()?;
                for i in 0..n {
                    let value = &self.packed.values[i];
                    let len = self.events[i].json.len();
                    let prev = previous[i].and_then(|p| pending.remove(&p));
                    let raw = match prev.filter(|_| depths[i] > 0) {
                        Some(prev) => {
                            d.set_dictionary(&prev)?;
                            d.decompress(value, len)?
                        }
                        None => self.plain.decompress(value, len)?,
                    };
                    each(i, &raw);
                    pending.insert(i, raw);
                }
            }
        }
        Ok(())
    }

    fn decode_with_dictionary(&mut self, i: usize) -> io::Result<Vec<u8>> {
        let decoders: &'a Decoders = self.decoders;
        let value = &self.packed.values[i];
        let capacity = self.events[i].json.len();
        match dictionary_for(decoders, &self.events[i].topic) {
            Some(d) => {
                self.with_dict.set_prepared_dictionary(d)?;
                self.with_dict.decompress(value, capacity)
            }
            None => self.plain.decompress(value, capacity),
        }
    }

    fn block(&mut self, b: usize) -> io::Result<Vec<u8>> {
        let Scheme::Block { events: k, .. } = self.scheme else {
            return Ok(Vec::new());
        };
        let members = &self.events[b * k..((b + 1) * k).min(self.events.len())];
        let capacity = 4 + members.iter().map(|e| e.json.len() + 4).sum::<usize>();
        self.plain.decompress(&self.packed.values[b], capacity)
    }
}

/// The dictionary of `topic`, else the shared one (`""`).
fn dictionary_for<'m, D>(dicts: &'m HashMap<String, D>, topic: &str) -> Option<&'m D> {
    dicts.get(topic).or_else(|| dicts.get(""))
}

fn prepare_encoders(
    dicts: &HashMap<String, Vec<u8>>,
    level: i32,
) -> HashMap<String, EncoderDictionary<'static>> {
    dicts
        .iter()
        .map(|(t, d)| (t.clone(), EncoderDictionary::copy(d, level)))
        .collect()
}

/// A block's bytes before compression: the count of events and each
/// event's length (u32 LE), then the events one after the other.
pub fn block_bytes(events: &[Event]) -> Vec<u8> {
    let total: usize = 4 + events.iter().map(|e| e.json.len() + 4).sum::<usize>();
    let mut out = Vec::with_capacity(total);
    let u32_le = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&u32_le(events.len()));
    for e in events {
        out.extend_from_slice(&u32_le(e.json.len()));
    }
    for e in events {
        out.extend_from_slice(&e.json);
    }
    out
}

/// The `j`-th event of a decompressed block of `block_bytes`; empty when
/// the block has no such event.
pub fn event_in_block(block: &[u8], j: usize) -> &[u8] {
    let u32_at = |n: usize| -> Option<usize> {
        let b = block.get(n * 4..n * 4 + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let count = u32_at(0).unwrap_or(0);
    if j >= count {
        return &[];
    }
    let start = 4 * (1 + count) + (1..=j).filter_map(u32_at).sum::<usize>();
    let len = u32_at(1 + j).unwrap_or(0);
    block.get(start..start + len).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Event {
        Event {
            topic: "Job".to_owned(),
            json: json.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_block_gives_back_each_of_its_events() {
        let events = [event("{\"a\":1}"), event(""), event("{\"bb\":22}")];
        let block = block_bytes(&events);
        assert_eq!(event_in_block(&block, 0), b"{\"a\":1}");
        assert_eq!(event_in_block(&block, 1), b"");
        assert_eq!(event_in_block(&block, 2), b"{\"bb\":22}");
        assert_eq!(event_in_block(&block, 3), b"");
    }

    #[test]
    fn every_scheme_decodes_what_it_encoded() -> io::Result<()> {
        let events: Vec<Event> = (0..40)
            .map(|i| event(&format!("{{\"ID\":\"job-{}\",\"Version\":{i}}}", i % 3)))
            .collect();
        let previous =
            super::super::corpus::previous_versions(&(0..40).map(|i| i % 3).collect::<Vec<_>>());
        let depths = super::super::corpus::chain_depths(&previous, 4);
        let dict = events.iter().flat_map(|e| e.json.clone()).collect();
        let schemes = [
            Scheme::Plain { level: 3 },
            Scheme::Dict {
                level: 3,
                dicts: HashMap::from([(String::new(), dict)]),
            },
            Scheme::Block {
                level: 3,
                events: 16,
            },
            Scheme::Delta {
                level: 3,
                previous,
                depths,
            },
        ];
        for scheme in &schemes {
            let packed = scheme.pack(&events)?;
            let decoders = scheme.decoders();
            let mut reader = scheme.reader(&packed, &events, &decoders)?;
            for (i, e) in events.iter().enumerate() {
                assert_eq!(reader.lookup(i)?, e.json);
            }
            let mut seen = 0;
            reader.replay(|i, raw| {
                assert_eq!(raw, events[i].json);
                seen += 1;
            })?;
            assert_eq!(seen, events.len());
        }
        Ok(())
    }
}
