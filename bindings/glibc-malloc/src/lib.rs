//! glibc's allocator keeps memory that was freed for reuse instead of giving it back to the
//! kernel, so a long-running process that once needed a lot (stratad during a large pull:
//! libostree's and libcurl's allocations go through the same `malloc`) stays that big.
//! [`trim`] gives it back. One of the crates under `bindings/`, the only place Strata writes
//! `unsafe`.
#![allow(unsafe_code)]

/// Return the free memory of every `malloc` arena to the kernel (glibc's `malloc_trim(0)`):
/// the process's resident size drops to what it still uses. Walks and locks each arena in
/// turn, so it belongs at a quiet moment (after a transaction), not in a hot path. Returns
/// whether any memory was released; always `false` where the C library is not glibc.
pub fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointers and has no preconditions; glibc makes it safe
        // to call from any thread at any time (it takes each arena's lock).
        unsafe { libc::malloc_trim(0) != 0 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many freed small blocks below the top of the heap are what `malloc_trim` exists for:
    /// after freeing them, trimming releases something.
    #[test]
    fn trim_releases_freed_memory() {
        let blocks: Vec<Vec<u8>> = (0..20_000).map(|i| vec![i as u8; 1024]).collect();
        // Keep the last one so the freed space is not simply the top of the heap.
        let keep = blocks.last().cloned();
        drop(blocks);
        assert!(
            trim(),
            "malloc_trim released nothing after 20 MB were freed"
        );
        assert_eq!(keep.map(|k| k.len()), Some(1024));
    }
}
