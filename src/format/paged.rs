//! The paged image of an index: how a database stores it in fixed-size pages.
//!
//! The image is a sequence of pages of `page_size` bytes (a page may be shorter where a part
//! ends): the first meta page, the slots in groups of `group_slots`, the upper lists, then the
//! rest of the meta bytes (the checksum table outgrows the first page only past ~32k pages of
//! 256 KiB; keeping it at the end means that never moves the data pages):
//! ```text
//! meta     header (112 bytes), the code ranges of an int8 index (version 5: dim × f32 lower
//!          bounds, dim × f32 steps), then one u64 checksum per data page (pages 1..=data pages)
//! group g  (slots g*G .. (g+1)*G, G = group_slots; see `group_slots`)
//!   nodes    one record per slot: state u8 (0 live, 1 deleted, 2 free, 3 copy: a live row
//!            whose vector equals its one link's, since version 4), level u8, 0u16,
//!            layer-0 count u32, label u64, m0 × u32 links (unused ones zero); the last group
//!            has room for all G records (zeros past the last slot)
//!   vectors  one record per slot: dim × f32, or (version 5, int8) dim × u8 codes; zeros for
//!            free slots
//! upper    for each non-free slot with level > 0, in slot order, for each layer 1..=level:
//!          count u32 and m × u32 links
//! header   0 magic "DKHNSWP\x1a"  8 version u32  12 metric u8  13 quantization u8 (0 f32,
//!          1 int8, 2 bit; version 5)  14 u8: int8 code ranges follow (0/1), bit: centres
//!          (0 untrained; version 5)  15 overfetch u8 (version 5; zero in version 4)
//!          16 dim  20 M  24 M0  28 ef_construction  32 ef_search  36 slots      (u32 each)
//!          40 seed u64  48 entry slot u32 (u32::MAX when empty)  52 top layer u32
//!          56 page_size u32  60 meta pages  64 node pages  68 vector pages  72 upper pages
//!          76 group slots u32  80 upper bytes u64  88 checksum of the checksum table u64
//!          96 checksum of the code ranges u64 (version 5; else zero)
//!          104 checksum of bytes 0..104 u64
//! ```
//! Float32 indexes are written as version 4, which older builds read; int8 ones as version 5.
//! ```text
//! ```
//! Each group's nodes and vectors start on a page boundary, so a new slot only ever adds pages
//! after the last group's: the pages of earlier slots keep their place whatever the index grows
//! to (only the small upper region and the meta tail after it move, as the last group grows).
//!
//! Pages are rendered from the live graph one at a time, so a checkpoint needs no copy of the
//! whole index; an unchanged part of the graph renders to identical bytes, so the store can
//! keep each page's checksum and rewrite only pages whose checksum changed. Loading checks
//! every checksum and every count, slot number and parameter: damaged or foreign pages give
//! an error, never a panic.

use super::{checksum64, fill_slot, install_entry, install_list, FilledSlots, StoredSlot};
use super::{install_copies, STATE_COPY, STATE_DELETED, STATE_FREE, STATE_LIVE};
use crate::distance::MetricKind;
use crate::error::{Error, Result};
use crate::graph::{Codec, Hnsw, FREE, MAX_LEVEL, MAX_SLOTS, NONE};
use crate::params::Params;
use crate::quantize::{BinaryQuantizer, Quantization, ScalarQuantizer};
use std::sync::atomic::Ordering;

/// Identifies a paged index image.
pub const PAGED_MAGIC: [u8; 8] = *b"DKHNSWP\x1a";
/// Current version of the paged format (5: int8 codes; float32 indexes are still written as 4).
pub const PAGED_VERSION: u32 = 5;
/// The version float32 indexes are written as.
const PAGED_F32_VERSION: u32 = 4;
/// Oldest version this build reads (version 3 had no copies).
pub const PAGED_MIN_VERSION: u32 = 3;
/// Bytes of the fixed header at the start of the first meta page.
pub const PAGED_HEADER_LEN: usize = 112;
/// Smallest page size the format accepts.
pub const MIN_PAGE_SIZE: usize = 4096;
/// Largest page size the format accepts.
pub const MAX_PAGE_SIZE: usize = 1 << 30;

/// Vector pages a group of slots fills (at most; fewer for very wide vectors).
const GROUP_VECTOR_PAGES: usize = 32;
/// Most node pages a group may need: bounds the room the last group reserves.
const GROUP_MAX_NODE_PAGES: usize = 8;

/// Sizes of the image's parts, derived from the parameters and the slots' levels.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Geometry {
    page_size: usize,
    /// Bytes of the code ranges in the meta part (0 for float32, or untrained).
    codec_len: usize,
    node_record: usize,
    vector_record: usize,
    slots: usize,
    upper_len: usize,
    group_slots: usize,
    groups: usize,
    /// Node pages of each group (the last one's included: it has room for a full group).
    group_node_pages: usize,
    /// Vector pages of each full group.
    group_vector_pages: usize,
    meta_pages: usize,
    node_pages: usize,
    vector_pages: usize,
    upper_pages: usize,
}

/// Slots per group: about GROUP_VECTOR_PAGES pages of vectors, with at most
/// GROUP_MAX_NODE_PAGES pages of node records, at least one slot.
fn group_slots(page_size: usize, node_record: usize, vector_record: usize) -> usize {
    (GROUP_VECTOR_PAGES * page_size / vector_record)
        .min(GROUP_MAX_NODE_PAGES * page_size / node_record)
        .max(1)
}

impl Geometry {
    fn new(
        page_size: usize,
        vector_record: usize,
        codec_len: usize,
        m0: usize,
        slots: usize,
        upper_len: usize,
    ) -> Geometry {
        let node_record = 16 + 4 * m0;
        let group_slots = group_slots(page_size, node_record, vector_record);
        let groups = slots.div_ceil(group_slots);
        let group_node_pages = (group_slots * node_record).div_ceil(page_size);
        let group_vector_pages = (group_slots * vector_record).div_ceil(page_size);
        let last_group_slots = slots - groups.saturating_sub(1) * group_slots;
        let vector_pages = if groups == 0 {
            0
        } else {
            (groups - 1) * group_vector_pages
                + (last_group_slots * vector_record).div_ceil(page_size)
        };
        let node_pages = groups * group_node_pages;
        let upper_pages = upper_len.div_ceil(page_size);
        let data_pages = node_pages + vector_pages + upper_pages;
        let meta_pages = (PAGED_HEADER_LEN + codec_len + 8 * data_pages).div_ceil(page_size);
        Geometry {
            page_size,
            codec_len,
            node_record,
            vector_record,
            slots,
            upper_len,
            group_slots,
            groups,
            group_node_pages,
            group_vector_pages,
            meta_pages,
            node_pages,
            vector_pages,
            upper_pages,
        }
    }

    fn data_pages(&self) -> usize {
        self.node_pages + self.vector_pages + self.upper_pages
    }

    fn pages(&self) -> usize {
        self.meta_pages + self.data_pages()
    }

    fn meta_len(&self) -> usize {
        PAGED_HEADER_LEN + self.codec_len + 8 * self.data_pages()
    }

    /// Which part page `page` belongs to, the byte offset inside that part (all groups' node
    /// records, or vectors, laid end to end) and the page's length.
    fn locate(&self, page: usize) -> (Part, usize, usize) {
        let s = self.page_size;
        if page == 0 {
            return (Part::Meta, 0, s.min(self.meta_len()));
        }
        let mut p = page - 1; // the data page's number in the checksum table
        if p < self.node_pages + self.vector_pages {
            let group = p / (self.group_node_pages + self.group_vector_pages);
            let within = p % (self.group_node_pages + self.group_vector_pages);
            let first_slot = group * self.group_slots;
            if within < self.group_node_pages {
                let len = self.group_slots * self.node_record;
                let off = within * s;
                return (
                    Part::Nodes,
                    first_slot * self.node_record + off,
                    s.min(len - off),
                );
            }
            let len = self.group_slots.min(self.slots - first_slot) * self.vector_record;
            let off = (within - self.group_node_pages) * s;
            return (
                Part::Vectors,
                first_slot * self.vector_record + off,
                s.min(len - off),
            );
        }
        p -= self.node_pages + self.vector_pages;
        if p < self.upper_pages {
            let off = p * s;
            return (Part::Upper, off, s.min(self.upper_len - off));
        }
        let off = (1 + p - self.upper_pages) * s;
        (Part::Meta, off, s.min(self.meta_len() - off))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Part {
    Meta,
    Nodes,
    Vectors,
    Upper,
}

/// A plan for writing an index as pages. The index must not change while pages are rendered.
pub struct ImageWriter {
    geometry: Geometry,
    /// Byte offset of each slot's upper lists in the upper region (slots with level > 0 only).
    upper_starts: Vec<(u32, usize)>,
    /// Checksum of each data page, once rendered.
    checksums: Vec<Option<u64>>,
    scratch: Vec<u8>,
}

impl ImageWriter {
    /// Plans the image of `index` with pages of `page_size` bytes.
    pub fn new(index: &Hnsw, page_size: usize) -> Result<ImageWriter> {
        if !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(Error::Corrupt(format!(
                "page size {page_size} is outside {MIN_PAGE_SIZE}..={MAX_PAGE_SIZE}"
            )));
        }
        let p = &index.params;
        let slots = index.store.slots();
        let mut upper_starts = Vec::new();
        let mut upper_len = 0usize;
        for id in 0..slots as u32 {
            let level = index.store.level(id);
            if level > 0 && index.store.flags(id).load(Ordering::Acquire) & FREE == 0 {
                upper_starts.push((id, upper_len));
                upper_len += level * 4 * (1 + p.m);
            }
        }
        let codec_len = codec_block(index).len();
        let vector_record = p.quantization.code_bytes(p.dim);
        let geometry = Geometry::new(page_size, vector_record, codec_len, p.m0, slots, upper_len);
        Ok(ImageWriter {
            checksums: vec![None; geometry.data_pages()],
            geometry,
            upper_starts,
            scratch: Vec::new(),
        })
    }

    /// Number of pages in the image.
    pub fn pages(&self) -> usize {
        self.geometry.pages()
    }

    /// Writes page `page` into `out` (at least `page_size` bytes; bytes past the page's
    /// length are zeroed) and returns the page's length and checksum.
    pub fn render(&mut self, index: &Hnsw, page: usize, out: &mut [u8]) -> Result<(usize, u64)> {
        let g = self.geometry;
        if page >= g.pages() {
            return Err(Error::Corrupt(format!(
                "page {page} is past the image's {} pages",
                g.pages()
            )));
        }
        if out.len() < g.page_size {
            return Err(Error::Corrupt(format!(
                "page buffer holds {} bytes, pages are {}",
                out.len(),
                g.page_size
            )));
        }
        let (part, offset, len) = g.locate(page);
        let body = &mut out[..len];
        match part {
            Part::Meta => {
                let meta = self.meta(index);
                body.copy_from_slice(&meta[offset..offset + len]);
            }
            Part::Nodes => render_records(body, offset, g.node_record, |id, rec| {
                if (id as usize) < g.slots {
                    node_record(index, id, rec)
                } else {
                    rec.resize(g.node_record, 0); // reserved room for slots to come
                }
            }),
            Part::Vectors => render_records(body, offset, g.vector_record, |id, rec| {
                vector_record(index, id, rec)
            }),
            Part::Upper => self.render_upper(index, offset, body),
        }
        out[len..g.page_size].fill(0);
        let checksum = checksum64(&out[..len]);
        if part != Part::Meta {
            self.checksums[page - 1] = Some(checksum);
        }
        Ok((len, checksum))
    }

    /// The meta bytes: header and the checksum of every data page (rendering missing ones).
    fn meta(&mut self, index: &Hnsw) -> Vec<u8> {
        let g = self.geometry;
        let mut page = std::mem::take(&mut self.scratch);
        page.resize(g.page_size, 0);
        for d in 0..g.data_pages() {
            if self.checksums[d].is_none() {
                self.render(index, 1 + d, &mut page)
                    .expect("data pages of a planned image render");
            }
        }
        self.scratch = page;
        let mut table = Vec::with_capacity(8 * g.data_pages());
        for c in &self.checksums {
            table.extend_from_slice(&c.expect("rendered above").to_le_bytes());
        }
        let p = &index.params;
        let (entry, top) = index
            .entry()
            .map_or((NONE, 0), |(id, level)| (id, level as u32));
        let codec = codec_block(index);
        let coded = p.quantization != Quantization::F32;
        let version = if coded {
            PAGED_VERSION
        } else {
            PAGED_F32_VERSION
        };
        let mut out = Vec::with_capacity(g.meta_len());
        out.extend_from_slice(&PAGED_MAGIC);
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&[
            p.metric.code(),
            p.quantization.code(),
            codec_flag(index),
            if coded { p.overfetch as u8 } else { 0 },
        ]);
        for v in [p.dim, p.m, p.m0, p.ef_construction, p.ef_search, g.slots] {
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        out.extend_from_slice(&p.seed.to_le_bytes());
        out.extend_from_slice(&entry.to_le_bytes());
        out.extend_from_slice(&top.to_le_bytes());
        for v in [
            g.page_size,
            g.meta_pages,
            g.node_pages,
            g.vector_pages,
            g.upper_pages,
            g.group_slots,
        ] {
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        out.extend_from_slice(&(g.upper_len as u64).to_le_bytes());
        out.extend_from_slice(&checksum64(&table).to_le_bytes());
        let codec_checksum = if codec.is_empty() {
            0
        } else {
            checksum64(&codec)
        };
        out.extend_from_slice(&codec_checksum.to_le_bytes());
        let header_checksum = checksum64(&out);
        out.extend_from_slice(&header_checksum.to_le_bytes());
        debug_assert_eq!(out.len(), PAGED_HEADER_LEN);
        out.extend_from_slice(&codec);
        out.extend_from_slice(&table);
        out
    }

    fn render_upper(&self, index: &Hnsw, offset: usize, body: &mut [u8]) {
        let m = index.params.m;
        let end = offset + body.len();
        // First slot whose lists end after `offset`.
        let first = self
            .upper_starts
            .partition_point(|&(id, start)| start + index.store.level(id) * 4 * (1 + m) <= offset);
        let mut record = Vec::new();
        for &(id, start) in &self.upper_starts[first..] {
            if start >= end {
                break;
            }
            record.clear();
            for level in 1..=index.store.level(id) {
                push_list(&mut record, index, id, level, m);
            }
            copy_overlap(body, offset, &record, start);
        }
    }
}

/// Fills `body` (the bytes at `offset` of a region of fixed-size records) record by record.
fn render_records(body: &mut [u8], offset: usize, size: usize, fill: impl Fn(u32, &mut Vec<u8>)) {
    let end = offset + body.len();
    let mut record = Vec::with_capacity(size);
    for id in offset / size..end.div_ceil(size) {
        record.clear();
        fill(id as u32, &mut record);
        debug_assert_eq!(record.len(), size);
        copy_overlap(body, offset, &record, id * size);
    }
}

/// Copies the part of `record` (placed at `start` of a region) that overlaps `body` (placed at
/// `offset`).
fn copy_overlap(body: &mut [u8], offset: usize, record: &[u8], start: usize) {
    let from = start.max(offset);
    let to = (start + record.len()).min(offset + body.len());
    if from < to {
        body[from - offset..to - offset].copy_from_slice(&record[from - start..to - start]);
    }
}

fn node_record(index: &Hnsw, id: u32, out: &mut Vec<u8>) {
    let m0 = index.params.m0;
    let flags = index.store.flags(id).load(Ordering::Acquire);
    if flags & FREE != 0 {
        out.push(STATE_FREE);
        out.resize(16 + 4 * m0, 0);
        return;
    }
    out.push(if flags & crate::search::HIDDEN != 0 {
        // Retired nodes are stored deleted: no snapshot from before a restart survives it.
        STATE_DELETED
    } else if flags & crate::graph::COPY != 0 {
        STATE_COPY
    } else {
        STATE_LIVE
    });
    out.push(index.store.level(id) as u8);
    out.extend_from_slice(&[0, 0]);
    let words = index.store.links(id, 0);
    let count = (words[0].load(Ordering::Acquire) as usize).min(m0);
    out.extend_from_slice(&(count as u32).to_le_bytes());
    out.extend_from_slice(&index.store.label(id).to_le_bytes());
    for w in &words[1..=count] {
        out.extend_from_slice(&w.load(Ordering::Acquire).to_le_bytes());
    }
    out.resize(16 + 4 * m0, 0);
}

fn vector_record(index: &Hnsw, id: u32, out: &mut Vec<u8>) {
    let p = &index.params;
    if index.store.flags(id).load(Ordering::Acquire) & FREE != 0 {
        out.resize(p.quantization.code_bytes(p.dim), 0);
        return;
    }
    if p.quantization == Quantization::F32 {
        for x in index.store.vector(id) {
            out.extend_from_slice(&x.to_le_bytes());
        }
    } else {
        out.extend_from_slice(index.store.code(id));
    }
}

/// Header byte 14: whether int8 ranges follow (0/1), or how many bit centres (0: untrained).
fn codec_flag(index: &Hnsw) -> u8 {
    match index.codec() {
        Some(Codec::Int8(_)) => 1,
        Some(Codec::Bit(quantizer)) => (quantizer.parts().0.len() / index.params.dim) as u8,
        _ => 0,
    }
}

/// The code ranges of a trained int8 index (lower bounds, then steps), else nothing.
fn codec_block(index: &Hnsw) -> Vec<u8> {
    match index.codec() {
        Some(Codec::Int8(quantizer)) => {
            let (lower, step) = quantizer.parts();
            lower
                .iter()
                .chain(step)
                .flat_map(|x| x.to_le_bytes())
                .collect()
        }
        // The rotation's seed is the index's (header), so the centres define the codes.
        Some(Codec::Bit(quantizer)) => quantizer
            .parts()
            .0
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
        _ => Vec::new(),
    }
}

/// Appends a list as count u32 and `cap` link words (unused ones zero).
fn push_list(out: &mut Vec<u8>, index: &Hnsw, id: u32, level: usize, cap: usize) {
    let words = index.store.links(id, level);
    let count = (words[0].load(Ordering::Acquire) as usize).min(cap);
    out.extend_from_slice(&(count as u32).to_le_bytes());
    for w in &words[1..=count] {
        out.extend_from_slice(&w.load(Ordering::Acquire).to_le_bytes());
    }
    out.resize(out.len() + 4 * (cap - count), 0);
}

/// An error unless a data page's checksum is the one the table stores.
fn check_page(page: usize, want: u64, got: u64) -> Result<()> {
    if got != want {
        return Err(Error::Corrupt(format!(
            "page {page} checksum mismatch (stored {want:016x}, computed {got:016x})"
        )));
    }
    Ok(())
}

/// Reassembles an index from its pages, checking everything.
pub struct ImageReader {
    params: Params,
    geometry: Geometry,
    entry: u32,
    top: usize,
    table_checksum: u64,
    codec_checksum: u64,
    meta: Vec<u8>,
    /// Checksum of each page as received (meta pages included).
    checksums: Vec<Option<u64>>,
    /// Expected checksum of each data page, known once all meta pages arrived.
    expected: Option<Vec<u64>>,
    nodes: Vec<u8>,
    vectors: Vec<u8>,
    upper: Vec<u8>,
}

impl ImageReader {
    /// Starts reading an image from its first page.
    pub fn new(first_page: &[u8]) -> Result<ImageReader> {
        if first_page.len() < PAGED_HEADER_LEN {
            return Err(Error::Corrupt(format!(
                "first page is {} bytes, shorter than the {PAGED_HEADER_LEN}-byte header",
                first_page.len()
            )));
        }
        let h = &first_page[..PAGED_HEADER_LEN];
        if h[..8] != PAGED_MAGIC {
            return Err(Error::Corrupt(
                "not an hnsw index image (bad magic number)".into(),
            ));
        }
        let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().expect("8 bytes"));
        let version = u32_at(8);
        if !(PAGED_MIN_VERSION..=PAGED_VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: PAGED_VERSION,
            });
        }
        if checksum64(&h[..104]) != u64_at(104) {
            return Err(Error::Corrupt("image header checksum mismatch".into()));
        }
        let metric = MetricKind::from_code(h[12])
            .ok_or_else(|| Error::Corrupt(format!("unknown metric code {}", h[12])))?;
        let quantization = match (version, h[13]) {
            (_, 0) => Quantization::F32,
            (5.., 1) => Quantization::Int8,
            (5.., 2) => Quantization::Bit,
            (_, code) => {
                return Err(Error::Corrupt(format!(
                    "unknown quantization code {code} in version {version}"
                )))
            }
        };
        // Byte 14: int8 ranges follow (1) or not (0); a bit index's number of centres.
        let codec_units = h[14] as usize;
        let has_codec = codec_units > 0;
        // Byte 15 is a coded index's over-fetch factor (1..=OVERFETCH_MAX; 0, from images written
        // before it was stored, means the default), zero for float32.
        let overfetch_ok = if quantization == Quantization::F32 {
            h[15] == 0
        } else {
            (h[15] as usize) <= crate::params::OVERFETCH_MAX
        };
        let units_ok = match quantization {
            Quantization::F32 => codec_units == 0,
            Quantization::Int8 => codec_units <= 1,
            Quantization::Bit => codec_units <= crate::graph::BIT_CENTRES,
        };
        if !units_ok || !overfetch_ok {
            return Err(Error::Corrupt(format!(
                "invalid code-range flags {:?} for {}",
                &h[13..16],
                quantization.name()
            )));
        }
        let params = Params {
            metric,
            dim: u32_at(16) as usize,
            m: u32_at(20) as usize,
            m0: u32_at(24) as usize,
            ef_construction: u32_at(28) as usize,
            ef_search: u32_at(32) as usize,
            seed: u64_at(40),
            quantization,
            overfetch: match (quantization, h[15]) {
                (Quantization::F32, _) => 1,
                (_, 0) => quantization.default_overfetch(),
                (_, stored) => stored as usize,
            },
        };
        params
            .validate()
            .map_err(|e| Error::Corrupt(format!("stored parameters are invalid: {e}")))?;
        let slots = u32_at(36) as usize;
        if slots as u64 > MAX_SLOTS {
            return Err(Error::Corrupt(format!("{slots} slots exceed the maximum")));
        }
        let page_size = u32_at(56) as usize;
        if !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(Error::Corrupt(format!("page size {page_size} is invalid")));
        }
        let upper_len = u64_at(80) as usize;
        // Each slot has at most MAX_LEVEL upper lists.
        if upper_len > slots * MAX_LEVEL * 4 * (1 + params.m) {
            return Err(Error::Corrupt(format!(
                "{upper_len} bytes of upper lists is too many for {slots} slots"
            )));
        }
        let codec_len = match quantization {
            _ if !has_codec => 0,
            Quantization::Bit => 4 * codec_units * params.dim,
            _ => 8 * params.dim,
        };
        let vector_record = quantization.code_bytes(params.dim);
        let geometry = Geometry::new(
            page_size,
            vector_record,
            codec_len,
            params.m0,
            slots,
            upper_len,
        );
        let stored = [u32_at(60), u32_at(64), u32_at(68), u32_at(72), u32_at(76)];
        let derived = [
            geometry.meta_pages,
            geometry.node_pages,
            geometry.vector_pages,
            geometry.upper_pages,
            geometry.group_slots,
        ];
        if stored.iter().zip(derived).any(|(&s, d)| s as usize != d) {
            return Err(Error::Corrupt(format!(
                "page counts {stored:?} do not match {slots} slots of this shape ({derived:?})"
            )));
        }
        Ok(ImageReader {
            params,
            entry: u32_at(48),
            top: u32_at(52) as usize,
            table_checksum: u64_at(88),
            codec_checksum: u64_at(96),
            meta: Vec::new(),
            checksums: Vec::new(), // sized by the first add_page (the caller checks pages() first)
            expected: None,
            nodes: Vec::new(),
            vectors: Vec::new(),
            upper: Vec::new(),
            geometry,
        })
    }

    /// Number of pages the image has.
    pub fn pages(&self) -> usize {
        self.geometry.pages()
    }

    /// Adds page `page` (its bytes may run past the page's length), in page order. Returns the
    /// page's checksum. Data pages are checked once the checksum table is complete (at the last
    /// page if it outgrew the first).
    pub fn add_page(&mut self, page: usize, bytes: &[u8]) -> Result<u64> {
        let g = self.geometry;
        if page >= g.pages() {
            return Err(Error::Corrupt(format!(
                "page {page} is past the image's {} pages",
                g.pages()
            )));
        }
        let (part, offset, len) = g.locate(page);
        if bytes.len() < len {
            return Err(Error::Corrupt(format!(
                "page {page} has {} bytes, expected {len}",
                bytes.len()
            )));
        }
        if self.checksums.is_empty() {
            self.checksums = vec![None; g.pages()];
        }
        if self.checksums[page].is_some() {
            return Err(Error::Corrupt(format!("page {page} was added twice")));
        }
        let body = &bytes[..len];
        let checksum = checksum64(body);
        if part == Part::Meta {
            if self.meta.len() != offset {
                return Err(Error::Corrupt(format!("meta page {page} is out of order")));
            }
            self.meta.extend_from_slice(body);
            if self.meta.len() == g.meta_len() {
                let codec = &self.meta[PAGED_HEADER_LEN..PAGED_HEADER_LEN + g.codec_len];
                if g.codec_len > 0 && checksum64(codec) != self.codec_checksum {
                    return Err(Error::Corrupt("int8 code ranges are damaged".into()));
                }
                let table = &self.meta[PAGED_HEADER_LEN + g.codec_len..];
                if checksum64(table) != self.table_checksum {
                    return Err(Error::Corrupt("page checksum table is damaged".into()));
                }
                let expected: Vec<u64> = table
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect();
                for (d, want) in expected.iter().enumerate() {
                    if let Some(got) = self.checksums[1 + d] {
                        check_page(1 + d, *want, got)?;
                    }
                }
                self.expected = Some(expected);
            }
        } else {
            if self.meta.is_empty() {
                return Err(Error::Corrupt(format!(
                    "data page {page} arrived before the first page"
                )));
            }
            if let Some(expected) = &self.expected {
                check_page(page, expected[page - 1], checksum)?;
            }
            let region = match part {
                Part::Nodes => &mut self.nodes,
                Part::Vectors => &mut self.vectors,
                _ => &mut self.upper,
            };
            if region.len() != offset {
                return Err(Error::Corrupt(format!("page {page} is out of order")));
            }
            region.extend_from_slice(body);
        }
        self.checksums[page] = Some(checksum);
        Ok(checksum)
    }

    /// Builds the index once every page was added.
    pub fn finish(self) -> Result<Hnsw> {
        if self.expected.is_none() {
            return Err(Error::Corrupt("the meta pages are incomplete".into()));
        }
        if let Some(missing) = self.checksums.iter().position(Option::is_none) {
            return Err(Error::Corrupt(format!("page {missing} is missing")));
        }
        let g = self.geometry;
        let p = self.params;
        let slots = g.slots;
        let mut index = Hnsw::new(p)?;
        if g.codec_len > 0 {
            let floats: Vec<f32> = self.meta[PAGED_HEADER_LEN..PAGED_HEADER_LEN + g.codec_len]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect();
            let codec = if p.quantization == Quantization::Bit {
                Codec::Bit(BinaryQuantizer::from_parts(
                    p.metric, p.dim, floats, p.seed,
                )?)
            } else {
                let (lower, step) = floats.split_at(p.dim);
                Codec::Int8(ScalarQuantizer::from_parts(lower.to_vec(), step.to_vec())?)
            };
            index.install_codec(codec)?;
        } else if p.quantization != Quantization::F32 && slots > 0 {
            return Err(Error::Corrupt(format!(
                "a {} index with {slots} slots has no {}",
                p.quantization.name(),
                if p.quantization == Quantization::Bit {
                    "centres"
                } else {
                    "code ranges"
                }
            )));
        }
        let node = |id: usize| &self.nodes[id * g.node_record..(id + 1) * g.node_record];
        let word =
            |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));

        // Pass 1: fill every slot (so links can be checked against their targets).
        let mut vector = vec![0.0f32; p.dim];
        let mut filled = FilledSlots::default();
        for id in 0..slots {
            let rec = node(id);
            let slot = StoredSlot {
                state: rec[0],
                level: rec[1] as usize,
                label: u64::from_le_bytes(rec[8..16].try_into().expect("8 bytes")),
                vector: &self.vectors[id * g.vector_record..(id + 1) * g.vector_record],
            };
            fill_slot(&mut index, id, slot, &mut vector, &mut filled)?;
        }

        // Pass 2: the links, layer 0 from the node records, upper layers in slot order.
        let mut upper_at = 0usize;
        for id in 0..slots as u32 {
            if index.store.flags(id).load(Ordering::Acquire) & FREE != 0 {
                continue;
            }
            let rec = node(id as usize);
            let list: Vec<u32> = (0..(word(rec, 4) as usize).min(p.m0))
                .map(|i| word(rec, 16 + 4 * i))
                .collect();
            install_list(&index, id, 0, word(rec, 4) as usize, &list, p.m0)?;
            for level in 1..=index.store.level(id) {
                let bytes = 4 * (1 + p.m);
                let chunk = self
                    .upper
                    .get(upper_at..upper_at + bytes)
                    .ok_or_else(|| Error::Corrupt("upper lists are truncated".into()))?;
                upper_at += bytes;
                let count = word(chunk, 0) as usize;
                let list: Vec<u32> = (0..count.min(p.m))
                    .map(|i| word(chunk, 4 + 4 * i))
                    .collect();
                install_list(&index, id, level, count, &list, p.m)?;
            }
        }
        if upper_at != g.upper_len {
            return Err(Error::Corrupt(format!(
                "upper lists hold {} bytes, the slots' levels need {upper_at}",
                g.upper_len
            )));
        }
        install_copies(&index, &filled.copies)?;
        install_entry(&index, self.entry, self.top, slots - filled.free.len())?;
        index.set_free_list(filled.free);
        index.note_deleted(filled.deleted as isize);
        Ok(index)
    }
}
