//! The memory allocator of cxr's programs, in one place: mimalloc, told to keep freed memory
//! for a while instead of handing it back to the operating system at once.
//!
//! Why: a network frees each layer's activations and allocates the next layer's a moment later,
//! and an image pipeline does the same per image. glibc's malloc returns large blocks to the OS
//! (~40 % of file->tensor time, bench/preprocess.sh). mimalloc (v3) by default does so 1 s
//! after a free, which still made every forward pass fault activations back in for the kernel to
//! zero: Xception at batch 8, 7 rounds (`/usr/bin/time backbone_throughput --rounds 6
//! xception`), took 1.8-2.0 s of system time and 32,000 page faults by default, 0.4-0.5 s and
//! 3,000-5,700 faults with freed memory kept 10 s, at a peak RSS of 545-578 MiB against 508.

/// The global allocator: each binary declares
/// `#[global_allocator] static ALLOCATOR: Allocator = Allocator;` and calls
/// [`keep_freed_memory`] first thing in `main`.
pub use mimalloc::MiMalloc as Allocator;

/// How long freed memory stays with the process before it goes back to the OS: longer than
/// any pause between two layers or two images, short enough that an idle server shrinks back.
pub const KEEP_FREED_MEMORY_MS: i64 = 10_000;

// mimalloc.h's `mi_option_purge_delay`, which the -sys crate does not name: the option before
// `mi_option_use_numa_nodes` (a test checks it against its documented default).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = libmimalloc_sys::mi_option_use_numa_nodes - 1;

/// Sets mimalloc's purge delay to [`KEEP_FREED_MEMORY_MS`], unless the user chose one with the
/// `MIMALLOC_PURGE_DELAY` environment variable (mimalloc reads it at start-up).
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: setting an option is a plain store in mimalloc's option table; any value is valid.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, KEEP_FREED_MEMORY_MS as _) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mimalloc's current purge delay in milliseconds (-1: never).
    fn purge_delay_ms() -> i64 {
        // SAFETY: reading an option has no preconditions.
        unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) as i64 }
    }

    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // mimalloc v3's purge delay is 1000 ms by default, and its neighbours' 1 and 0: this
        // pins the option's number (unless the environment set it).
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(purge_delay_ms(), 1000);
        }
        keep_freed_memory();
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(purge_delay_ms(), KEEP_FREED_MEMORY_MS);
        }
    }
}
