//! The storage format of an index: a paged image (`paged`) whose pages carry one 64-bit
//! checksum each (`checksum`), plus the checks every loaded value passes before it reaches the
//! graph (here) and whole-image helpers for tools and tests (`image`). Loading never panics:
//! damaged, truncated or foreign bytes are an `Error::Corrupt` (or `UnsupportedVersion`).

mod checksum;
mod image;
mod paged;

pub use checksum::checksum64;
pub use image::{read_image, write_image};
pub use paged::{
    ImageReader, ImageWriter, MAX_PAGE_SIZE, MIN_PAGE_SIZE, PAGED_HEADER_LEN, PAGED_MAGIC,
    PAGED_VERSION,
};

use crate::error::{Error, Result};
use crate::graph::{Hnsw, DELETED, FREE, MAX_LEVEL, NONE};
use crate::quantize::Quantization;
use std::sync::atomic::Ordering;

/// Slot states as stored in node records.
const STATE_LIVE: u8 = 0;
const STATE_DELETED: u8 = 1;
const STATE_FREE: u8 = 2;
/// A live row whose vector equals its owner's, the one link in its layer-0 list.
const STATE_COPY: u8 = 3;

/// A slot as read from storage, before it is checked and placed.
struct StoredSlot<'a> {
    state: u8,
    level: usize,
    label: u64,
    /// The raw stored bytes: a little-endian float32 vector, or a code.
    vector: &'a [u8],
}

/// Checks a stored slot and fills slot `id` of an index being loaded with it (slots are filled in
/// order, all before any link, so links can be checked against their targets); free and deleted
/// slots are counted in `filled`.
fn fill_slot(
    index: &mut Hnsw,
    id: usize,
    slot: StoredSlot,
    vector: &mut [f32],
    filled: &mut FilledSlots,
) -> Result<()> {
    if slot.state == STATE_FREE {
        let placed = index.allocate(0, 0, &vec![0; slot.vector.len()])?;
        debug_assert_eq!(placed as usize, id);
        index.store.release(placed);
        filled.free.push(placed);
        return Ok(());
    }
    if ![STATE_LIVE, STATE_DELETED, STATE_COPY].contains(&slot.state) {
        return Err(Error::Corrupt(format!(
            "slot {id} has unknown state {}",
            slot.state
        )));
    }
    if slot.level > MAX_LEVEL {
        return Err(Error::Corrupt(format!(
            "slot {id} has level {} > {MAX_LEVEL}",
            slot.level
        )));
    }
    let placed = if index.params.quantization == Quantization::F32 {
        for (x, b) in vector.iter_mut().zip(slot.vector.chunks_exact(4)) {
            *x = f32::from_le_bytes(b.try_into().expect("4 bytes"));
        }
        crate::distance::check_finite(vector)
            .map_err(|e| Error::Corrupt(format!("slot {id}: {e}")))?;
        let mut stored = Vec::new();
        index.encode_into(vector, &mut stored);
        index.allocate(slot.label, slot.level, &stored)?
    } else {
        // Every byte value is a valid code.
        index.allocate(slot.label, slot.level, slot.vector)?
    };
    debug_assert_eq!(placed as usize, id);
    if slot.state == STATE_DELETED {
        index
            .store
            .flags(placed)
            .fetch_or(DELETED, Ordering::AcqRel);
        filled.deleted += 1;
    } else {
        if slot.state == STATE_COPY {
            filled.copies.push(placed);
        }
        index
            .claim_label(slot.label, placed)
            .map_err(|_| Error::Corrupt(format!("label {} appears twice", slot.label)))?;
    }
    Ok(())
}

/// What filling the slots found.
#[derive(Default)]
struct FilledSlots {
    free: Vec<u32>,
    deleted: usize,
    copies: Vec<u32>,
}

/// Checks a stored neighbour list and writes it into slot `id`'s list on `level`.
fn install_list(
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

/// Checks a stored entry point against the loaded slots (`nodes` non-free ones) and sets it.
fn install_entry(index: &Hnsw, entry: u32, top: usize, nodes: usize) -> Result<()> {
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

/// Checks each stored copy (level 0, one link, to a node that is no copy and has the same
/// vector) once every list is in place, and registers it with its owner.
fn install_copies(index: &Hnsw, copies: &[u32]) -> Result<()> {
    let is_copy: std::collections::HashSet<u32> = copies.iter().copied().collect();
    for &copy in copies {
        let words = index.store.links(copy, 0);
        let owner = words[1].load(Ordering::Acquire);
        if index.store.level(copy) != 0 || words[0].load(Ordering::Acquire) != 1 {
            return Err(Error::Corrupt(format!(
                "copy slot {copy} must have level 0 and one link"
            )));
        }
        if is_copy.contains(&owner) || index.store.code(owner) != index.store.code(copy) {
            return Err(Error::Corrupt(format!(
                "copy slot {copy} links to slot {owner}, which is not a node with its vector"
            )));
        }
        index.add_copy(owner, copy);
    }
    Ok(())
}
