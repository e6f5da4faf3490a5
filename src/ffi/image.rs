//! Paged images (see `format`): how the bridge stores an index in DuckDB's blocks.

use super::{slice, slice_mut, with_status, HnswRsIndex, HnswStatus};
use crate::format::{ImageReader, ImageWriter};

/// A plan for writing an index's image page by page.
pub struct HnswRsImage(ImageWriter);

/// An image being read page by page.
pub struct HnswRsReader(ImageReader);

/// Plans the paged image of `index`; `*pages` receives its page count.
///
/// # Safety
/// `index` must be a live handle that no one modifies until the image is freed; `pages` must
/// be writable; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_image_new(
    index: *const HnswRsIndex,
    page_size: usize,
    pages: *mut usize,
    status: *mut HnswStatus,
) -> *mut HnswRsImage {
    with_status(status, std::ptr::null_mut(), || {
        let image = ImageWriter::new(&(*index).0, page_size)?;
        *pages = image.pages();
        Ok(Box::into_raw(Box::new(HnswRsImage(image))))
    })
}

/// Renders page `page` into `out` (`cap` ≥ page size bytes; the tail past the page's length is
/// zeroed); returns the page's length (0 on error) and its checksum in `*checksum`.
///
/// # Safety
/// `image` from `hnsw_rs_image_new` for this `index`; `out` writable for `cap` bytes; `status`
/// valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_image_render(
    image: *mut HnswRsImage,
    index: *const HnswRsIndex,
    page: usize,
    out: *mut u8,
    cap: usize,
    checksum: *mut u64,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || {
        let (len, sum) = (*image).0.render(&(*index).0, page, slice_mut(out, cap))?;
        *checksum = sum;
        Ok(len)
    })
}

/// Frees an image plan (null is ignored).
///
/// # Safety
/// `image` from `hnsw_rs_image_new` (or null), not used afterwards; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_image_free(image: *mut HnswRsImage, status: *mut HnswStatus) {
    with_status(status, (), || {
        if !image.is_null() {
            drop(Box::from_raw(image));
        }
        Ok(())
    })
}

/// Starts loading an image from its first page; `*pages` receives the image's page count.
///
/// # Safety
/// `first` readable for `len` bytes; `pages` writable; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_reader_new(
    first: *const u8,
    len: usize,
    pages: *mut usize,
    status: *mut HnswStatus,
) -> *mut HnswRsReader {
    with_status(status, std::ptr::null_mut(), || {
        let reader = ImageReader::new(slice(first, len))?;
        *pages = reader.pages();
        Ok(Box::into_raw(Box::new(HnswRsReader(reader))))
    })
}

/// Adds page `page` (meta pages first); `*checksum` receives its checksum.
///
/// # Safety
/// `reader` from `hnsw_rs_reader_new`; `bytes` readable for `len` bytes; `status` valid or
/// null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_reader_add(
    reader: *mut HnswRsReader,
    page: usize,
    bytes: *const u8,
    len: usize,
    checksum: *mut u64,
    status: *mut HnswStatus,
) -> bool {
    with_status(status, false, || {
        *checksum = (*reader).0.add_page(page, slice(bytes, len))?;
        Ok(true)
    })
}

/// Builds the index from a reader that received every page, and frees the reader.
///
/// # Safety
/// `reader` from `hnsw_rs_reader_new`, not used afterwards; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_reader_finish(
    reader: *mut HnswRsReader,
    status: *mut HnswStatus,
) -> *mut HnswRsIndex {
    with_status(status, std::ptr::null_mut(), || {
        let reader = Box::from_raw(reader);
        Ok(Box::into_raw(Box::new(HnswRsIndex(reader.0.finish()?))))
    })
}

/// Frees a reader without building an index (null is ignored).
///
/// # Safety
/// `reader` from `hnsw_rs_reader_new` (or null), not used afterwards; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_reader_free(reader: *mut HnswRsReader, status: *mut HnswStatus) {
    with_status(status, (), || {
        if !reader.is_null() {
            drop(Box::from_raw(reader));
        }
        Ok(())
    })
}
