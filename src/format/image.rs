//! A whole image as one byte string (every page padded to the page size): for tools that save an
//! index to a file and for tests that compare two indexes byte for byte.

use super::{ImageReader, ImageWriter, PAGED_HEADER_LEN};
use crate::error::{Error, Result};
use crate::graph::Hnsw;

/// Renders every page of `index` with pages of `page_size` bytes, one after the other.
pub fn write_image(index: &Hnsw, page_size: usize) -> Result<Vec<u8>> {
    let mut writer = ImageWriter::new(index, page_size)?;
    let mut out = vec![0u8; writer.pages() * page_size];
    for (page, chunk) in out.chunks_exact_mut(page_size).enumerate() {
        writer.render(index, page, chunk)?;
    }
    Ok(out)
}

/// Loads an index from [`write_image`]'s bytes.
pub fn read_image(bytes: &[u8]) -> Result<Hnsw> {
    if bytes.len() < PAGED_HEADER_LEN {
        return Err(Error::Corrupt(format!(
            "{} bytes is shorter than the {PAGED_HEADER_LEN}-byte header",
            bytes.len()
        )));
    }
    let page_size = u32::from_le_bytes(bytes[56..60].try_into().expect("4 bytes")) as usize;
    let mut reader = ImageReader::new(&bytes[..page_size.clamp(PAGED_HEADER_LEN, bytes.len())])?;
    if reader.pages().checked_mul(page_size) != Some(bytes.len()) {
        return Err(Error::Corrupt(format!(
            "{} bytes do not hold {} pages of {page_size} bytes",
            bytes.len(),
            reader.pages()
        )));
    }
    for (page, chunk) in bytes.chunks_exact(page_size).enumerate() {
        reader.add_page(page, chunk)?;
    }
    reader.finish()
}
