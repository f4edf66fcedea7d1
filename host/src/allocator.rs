//! The process's allocator: mimalloc, asked for plain blocks whenever a
//! plain block is aligned enough.
//!
//! The `mimalloc` crate's allocator passes every request to
//! `mi_malloc_aligned`, whatever its alignment. mimalloc's aligned path
//! serves a request from its size class only while that class's current
//! page has a free block at hand; once the page is used up, a size whose
//! class is not a power of two (24, 40, 48 bytes...) is over-allocated from
//! a larger class instead, the page of its own class is never refilled, and
//! the block is marked as having interior pointers, which slows its free.
//! Every mimalloc block is aligned to at least a machine word, so a
//! request aligned to no more than that is served by plain `mi_malloc`,
//! which always takes its own size class.

use std::{
    alloc::{GlobalAlloc, Layout},
    ffi::c_void,
};

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

/// What every mimalloc block is aligned to.
const BLOCK_ALIGN: usize = std::mem::size_of::<usize>();

/// mimalloc, without its aligned path for requests that do not need it.
pub struct Allocator;

// SAFETY: every method hands the request to mimalloc, which returns a block
// of at least `size` bytes aligned to `align` (plain blocks are aligned to
// `BLOCK_ALIGN`, so they are only used when that is enough), or null.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= BLOCK_ALIGN {
            unsafe { mi_malloc(layout.size()).cast() }
        } else {
            unsafe { mi_malloc_aligned(layout.size(), layout.align()).cast() }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= BLOCK_ALIGN {
            unsafe { mi_zalloc(layout.size()).cast() }
        } else {
            unsafe { mi_zalloc_aligned(layout.size(), layout.align()).cast() }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator (the caller's contract).
        unsafe { mi_free(ptr.cast::<c_void>()) };
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= BLOCK_ALIGN {
            unsafe { mi_realloc(ptr.cast(), new_size).cast() }
        } else {
            unsafe { mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain blocks of every small size, and blocks grown from them, are
    /// word-aligned (what serving word-aligned requests from them needs),
    /// and larger alignments are still honoured.
    #[test]
    fn blocks_are_aligned_as_asked() {
        let allocator = Allocator;
        let mut blocks = Vec::new();
        for size in 1..=2048 {
            for align in [1, 2, 4, 8, 16, 64, 4096] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: the layout has a non-zero size.
                let ptr = unsafe { allocator.alloc(layout) };
                assert!(!ptr.is_null());
                assert_eq!(ptr as usize % align.max(BLOCK_ALIGN), 0, "{layout:?}");
                // SAFETY: `ptr` was allocated with `layout`; the new size is non-zero.
                let grown = unsafe { allocator.realloc(ptr, layout, size * 3) };
                assert!(!grown.is_null());
                assert_eq!(grown as usize % align, 0, "{layout:?} grown");
                blocks.push((grown, Layout::from_size_align(size * 3, align).unwrap()));
            }
        }
        for (ptr, layout) in blocks {
            // SAFETY: allocated above with this layout.
            unsafe { allocator.dealloc(ptr, layout) };
        }
    }
}
