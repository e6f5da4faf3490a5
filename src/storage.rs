//! The serialized form of an index.
//!
//! Layout (little endian):
//! ```text
//! header (72 bytes)
//!   0  magic "DKHNSW\0\x1a"     8  format version (u32)   12 metric code (u8) + 3 zero bytes
//!   16 dim   20 M   24 M0   28 ef_construction   32 ef_search   36 slots        (u32 each)
//!   40 seed (u64)   48 entry slot (u32, u32::MAX when empty)   52 top layer (u32)
//!   56 body length (u64)   64 body CRC-32C (u32)   68 header CRC-32C over bytes 0..68 (u32)
//! body: for every slot
//!   state (u8: 0 live, 1 deleted, 2 free); then, unless free:
//!   level (u8), label (u64), dim × f32 vector, then for each layer 0..=level:
//!   count (u32) and count × u32 neighbour slots
//! free-list length (u32) and entries (u32 each)
//! ```
//! Decoding validates the checksums first and then every count, slot number and parameter, so
//! corrupted or truncated input yields an error, never a panic.

use crate::distance::MetricKind;
use crate::error::{Error, Result};
use crate::graph::{Hnsw, DELETED, FREE, MAX_LEVEL, MAX_SLOTS, NONE};
use crate::params::Params;
use std::sync::atomic::Ordering;

/// Identifies the index format.
pub const MAGIC: [u8; 8] = *b"DKHNSW\0\x1a";
/// Current format version.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 72;

const STATE_LIVE: u8 = 0;
const STATE_DELETED: u8 = 1;
const STATE_FREE: u8 = 2;

/// CRC-32C (Castagnoli), bitwise table built at compile time.
pub fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0x82F6_3B78 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

impl Hnsw {
    /// Serializes the whole index (needs no other thread to be writing).
    pub fn to_bytes(&self) -> Vec<u8> {
        let p = &self.params;
        let slots = self.store.slots();
        let mut body = Vec::with_capacity(slots * (10 + 4 * p.dim + 4 * (1 + p.m0)));
        for id in 0..slots as u32 {
            let flags = self.store.flags(id).load(Ordering::Acquire);
            if flags & FREE != 0 {
                body.push(STATE_FREE);
                continue;
            }
            body.push(if flags & crate::search::HIDDEN != 0 {
                // Retired nodes are stored deleted: no snapshot from before a restart survives it.
                STATE_DELETED
            } else {
                STATE_LIVE
            });
            let level = self.store.level(id);
            body.push(level as u8);
            body.extend_from_slice(&self.store.label(id).to_le_bytes());
            for x in self.store.vector(id) {
                body.extend_from_slice(&x.to_le_bytes());
            }
            for l in 0..=level {
                let words = self.store.links(id, l);
                let count = (words[0].load(Ordering::Acquire) as usize).min(words.len() - 1);
                body.extend_from_slice(&(count as u32).to_le_bytes());
                for w in &words[1..=count] {
                    body.extend_from_slice(&w.load(Ordering::Acquire).to_le_bytes());
                }
            }
        }
        let free = self.free_list();
        body.extend_from_slice(&(free.len() as u32).to_le_bytes());
        for id in free {
            body.extend_from_slice(&id.to_le_bytes());
        }

        let (entry, top) = self
            .entry()
            .map_or((NONE, 0), |(id, level)| (id, level as u32));
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&[p.metric.code(), 0, 0, 0]);
        for v in [p.dim, p.m, p.m0, p.ef_construction, p.ef_search, slots] {
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        out.extend_from_slice(&p.seed.to_le_bytes());
        out.extend_from_slice(&entry.to_le_bytes());
        out.extend_from_slice(&top.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&crc32c(&body).to_le_bytes());
        let header_crc = crc32c(&out);
        out.extend_from_slice(&header_crc.to_le_bytes());
        debug_assert_eq!(out.len(), HEADER_LEN);
        out.extend_from_slice(&body);
        out
    }

    /// Rebuilds an index from [`Hnsw::to_bytes`] output, rejecting anything malformed.
    pub fn from_bytes(bytes: &[u8]) -> Result<Hnsw> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Corrupt(format!(
                "{} bytes is shorter than the {HEADER_LEN}-byte header",
                bytes.len()
            )));
        }
        if bytes[..8] != MAGIC {
            return Err(Error::Corrupt(
                "not an hnsw index (bad magic number)".into(),
            ));
        }
        let mut h = Reader::new(&bytes[..HEADER_LEN]);
        h.skip(8)?;
        let version = h.u32()?;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let stored_header_crc = u32::from_le_bytes(bytes[68..72].try_into().expect("4 bytes"));
        if crc32c(&bytes[..68]) != stored_header_crc {
            return Err(Error::Corrupt("header checksum mismatch".into()));
        }
        let metric_code = h.u8()?;
        h.skip(3)?;
        let metric = MetricKind::from_code(metric_code)
            .ok_or_else(|| Error::Corrupt(format!("unknown metric code {metric_code}")))?;
        let dim = h.u32()? as usize;
        let m = h.u32()? as usize;
        let m0 = h.u32()? as usize;
        let ef_construction = h.u32()? as usize;
        let ef_search = h.u32()? as usize;
        let slots = h.u32()? as usize;
        let seed = h.u64()?;
        let entry = h.u32()?;
        let top = h.u32()? as usize;
        let body_len = h.u64()?;
        let body_crc = h.u32()?;
        let body = &bytes[HEADER_LEN..];
        if body.len() as u64 != body_len {
            return Err(Error::Corrupt(format!(
                "body is {} bytes, header says {body_len} (truncated or padded)",
                body.len()
            )));
        }
        if crc32c(body) != body_crc {
            return Err(Error::Corrupt("body checksum mismatch".into()));
        }

        let params = Params {
            metric,
            dim,
            m,
            m0,
            ef_construction,
            ef_search,
            seed,
        };
        params
            .validate()
            .map_err(|e| Error::Corrupt(format!("stored parameters are invalid: {e}")))?;
        if slots as u64 > MAX_SLOTS {
            return Err(Error::Corrupt(format!("{slots} slots exceed the maximum")));
        }
        // Each non-free slot needs at least 14 bytes; reject absurd counts before allocating.
        if slots > body.len() {
            return Err(Error::Corrupt(format!(
                "{slots} slots cannot fit in {} bytes",
                body.len()
            )));
        }

        let mut index = Hnsw::new(params)?;
        let mut r = Reader::new(body);
        let mut vector = vec![0.0f32; dim];
        let mut links: Vec<(u32, usize, Vec<u32>)> = Vec::new();
        let mut free_slots = Vec::new();
        let mut deleted = 0usize;
        for id in 0..slots as u32 {
            let state = r.u8()?;
            if state == STATE_FREE {
                let slot = index.allocate(0, 0, &vector)?;
                debug_assert_eq!(slot, id);
                index.store.release(slot);
                free_slots.push(id);
                continue;
            }
            if state != STATE_LIVE && state != STATE_DELETED {
                return Err(Error::Corrupt(format!(
                    "slot {id} has unknown state {state}"
                )));
            }
            let level = r.u8()? as usize;
            if level > MAX_LEVEL {
                return Err(Error::Corrupt(format!(
                    "slot {id} has level {level} > {MAX_LEVEL}"
                )));
            }
            let label = r.u64()?;
            for x in vector.iter_mut() {
                *x = r.f32()?;
            }
            crate::distance::check_finite(&vector)
                .map_err(|e| Error::Corrupt(format!("slot {id}: {e}")))?;
            let slot = index.allocate(label, level, &vector)?;
            debug_assert_eq!(slot, id);
            for l in 0..=level {
                let count = r.u32()? as usize;
                let cap = params.max_links(l);
                if count > cap {
                    return Err(Error::Corrupt(format!(
                        "slot {id} layer {l} has {count} neighbours, more than {cap}"
                    )));
                }
                let mut list = Vec::with_capacity(count);
                for _ in 0..count {
                    let n = r.u32()?;
                    if n as usize >= slots || n == id {
                        return Err(Error::Corrupt(format!(
                            "slot {id} links to invalid slot {n}"
                        )));
                    }
                    list.push(n);
                }
                links.push((id, l, list));
            }
            if state == STATE_DELETED {
                index.store.flags(id).fetch_or(DELETED, Ordering::AcqRel);
                deleted += 1;
            } else {
                index
                    .claim_label(label, id)
                    .map_err(|_| Error::Corrupt(format!("label {label} appears twice")))?;
            }
        }
        let free_len = r.u32()? as usize;
        let mut free_list = Vec::with_capacity(free_len.min(slots));
        for _ in 0..free_len {
            free_list.push(r.u32()?);
        }
        if !r.is_empty() {
            return Err(Error::Corrupt(format!(
                "{} unexpected trailing bytes",
                r.remaining()
            )));
        }
        free_list.sort_unstable();
        free_slots.sort_unstable();
        if free_list != free_slots {
            return Err(Error::Corrupt(
                "free list does not match the free slots".into(),
            ));
        }

        for (id, level, list) in links {
            install_list(
                &index,
                id,
                level,
                list.len(),
                &list,
                params.max_links(level),
            )?;
        }

        install_entry(&index, entry, top, slots - free_slots.len())?;
        index.set_free_list(free_slots);
        index.note_deleted(deleted as isize);
        Ok(index)
    }
}

/// Checks a stored entry point against the loaded slots (`nodes` non-free ones) and sets it.
pub(crate) fn install_entry(index: &Hnsw, entry: u32, top: usize, nodes: usize) -> Result<()> {
    if entry == NONE {
        if nodes != 0 {
            return Err(Error::Corrupt("nodes present but no entry point".into()));
        }
        return Ok(());
    }
    if entry as usize >= index.store.slots()
        || index.store.flags(entry).load(Ordering::Acquire) & FREE != 0
    {
        return Err(Error::Corrupt(format!("entry point {entry} is not a node")));
    }
    if index.store.level(entry) != top {
        return Err(Error::Corrupt(format!(
            "entry point {entry} is on layer {}, header says {top}",
            index.store.level(entry)
        )));
    }
    index.set_entry(Some((entry, top)));
    Ok(())
}

/// Checks a stored neighbour list and writes it into slot `id`'s list on `level`.
pub(crate) fn install_list(
    index: &Hnsw,
    id: u32,
    level: usize,
    count: usize,
    list: &[u32],
    cap: usize,
) -> Result<()> {
    if count > cap {
        return Err(Error::Corrupt(format!(
            "slot {id} layer {level} has {count} neighbours, more than {cap}"
        )));
    }
    let slots = index.store.slots();
    for &n in list {
        if n as usize >= slots
            || n == id
            || index.store.flags(n).load(Ordering::Acquire) & FREE != 0
            || index.store.level(n) < level
        {
            return Err(Error::Corrupt(format!(
                "slot {id} layer {level} links to slot {n}, which is not a node on that layer"
            )));
        }
    }
    let words = index.store.links(id, level);
    for (w, &n) in words[1..].iter().zip(list) {
        w.store(n, Ordering::Relaxed);
    }
    words[0].store(list.len() as u32, Ordering::Release);
    Ok(())
}

/// Bounds-checked little-endian reader.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.data.len() - self.pos < n {
            return Err(Error::Corrupt(format!(
                "unexpected end of data at byte {} (needed {n} more)",
                self.pos
            )));
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }
    fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn is_empty(&self) -> bool {
        self.pos == self.data.len()
    }
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::crc32c;

    #[test]
    fn crc32c_known_vector() {
        // Standard check value of CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }
}
