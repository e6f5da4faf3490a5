//! Memory for node-store chunks. Large chunks are mapped directly and backed by transparent
//! huge pages where the kernel allows it: searches touch random nodes, so with 4 KiB pages
//! almost every vector load also misses the TLB.

use std::alloc::{alloc_zeroed, dealloc, Layout};

/// Chunks at least this large are mapped with huge pages (2 MiB on x86-64 Linux).
const HUGE_PAGE: usize = 2 << 20;

/// Allocates `layout.size()` zeroed bytes aligned to `layout.align()`; null on failure.
pub(crate) fn alloc_chunk(layout: Layout) -> *mut u8 {
    #[cfg(target_os = "linux")]
    if layout.size() >= HUGE_PAGE && layout.align() <= HUGE_PAGE {
        return linux::map_huge(layout.size());
    }
    // SAFETY: callers never ask for zero bytes.
    unsafe { alloc_zeroed(layout) }
}

/// Frees memory from [`alloc_chunk`] with the same layout.
///
/// # Safety
/// `ptr` came from `alloc_chunk(layout)` and is not used afterwards.
pub(crate) unsafe fn free_chunk(ptr: *mut u8, layout: Layout) {
    #[cfg(target_os = "linux")]
    if layout.size() >= HUGE_PAGE && layout.align() <= HUGE_PAGE {
        // SAFETY: mapped by `map_huge` with this size.
        unsafe { linux::unmap(ptr, layout.size()) };
        return;
    }
    // SAFETY: allocated by `alloc_zeroed` with this layout.
    unsafe { dealloc(ptr, layout) }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::HUGE_PAGE;
    use std::ffi::c_void;

    const PROT_READ: i32 = 1;
    const PROT_WRITE: i32 = 2;
    const MAP_PRIVATE: i32 = 2;
    const MAP_ANONYMOUS: i32 = 0x20;
    const MADV_HUGEPAGE: i32 = 14;

    extern "C" {
        fn mmap(
            addr: *mut c_void,
            len: usize,
            prot: i32,
            flags: i32,
            fd: i32,
            off: i64,
        ) -> *mut c_void;
        fn munmap(addr: *mut c_void, len: usize) -> i32;
        fn madvise(addr: *mut c_void, len: usize, advice: i32) -> i32;
    }

    /// Maps `size` zeroed bytes at a huge-page boundary and asks for huge pages; null on failure.
    pub(super) fn map_huge(size: usize) -> *mut u8 {
        let span = size + HUGE_PAGE;
        // SAFETY: anonymous private mapping; the result is checked below.
        let raw = unsafe {
            mmap(
                std::ptr::null_mut(),
                span,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw as isize == -1 {
            return std::ptr::null_mut();
        }
        let start = raw as usize;
        let aligned = start.next_multiple_of(HUGE_PAGE);
        // SAFETY: both trimmed ranges lie inside the mapping made above (page-aligned, as mmap
        // and HUGE_PAGE are multiples of the page size); a failed advice only costs speed.
        unsafe {
            if aligned > start {
                munmap(raw, aligned - start);
            }
            let end = start + span;
            if end > aligned + size {
                munmap((aligned + size) as *mut c_void, end - aligned - size);
            }
            madvise(aligned as *mut c_void, size, MADV_HUGEPAGE);
        }
        aligned as *mut u8
    }

    /// Unmaps memory from [`map_huge`].
    ///
    /// # Safety
    /// `ptr`/`size` describe a live mapping from `map_huge`.
    pub(super) unsafe fn unmap(ptr: *mut u8, size: usize) {
        // SAFETY: per the contract.
        unsafe { munmap(ptr as *mut c_void, size) };
    }
}
