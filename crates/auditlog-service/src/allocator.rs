//! The memory allocator's one setting: how many arenas glibc's malloc may keep.
//!
//! glibc gives each thread that contends for the heap an arena of its own, up to eight per
//! core, and memory freed in an arena mostly stays with it. A server whose requests move
//! between tokio's workers and its blocking threads frees on one thread what it allocated on
//! another, so its resident memory creeps up long after its live heap has stopped growing
//! (docs/operations.md has the measurements: a 600-second soak ended at 107 MB with the
//! default and at 55 MB with two arenas, while the live heap stayed at about 25 MB). Two
//! arenas are enough for two workers and the writer; fewer would serialize allocation.

/// The arenas `auditlog serve` allows when the environment does not choose.
pub const DEFAULT_ARENAS: i32 = 2;

/// Limits glibc's arenas to [`DEFAULT_ARENAS`], unless the operator chose otherwise through
/// `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` (which glibc itself reads at startup). Must run
/// before the process starts its other threads: arenas made before it stay.
///
/// Returns whether the limit was applied.
pub fn limit_arenas() -> bool {
    let chosen_by_operator = std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc.arena_max"));
    if chosen_by_operator {
        return false;
    }
    set_arena_max(DEFAULT_ARENAS)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_arena_max(arenas: i32) -> bool {
    // SAFETY: `mallopt` only changes a malloc parameter; it takes no pointers and glibc
    // serializes it against allocation. M_ARENA_MAX with a positive value is documented in
    // mallopt(3).
    #[allow(unsafe_code)]
    let applied = unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
    applied == 1
}

/// Other C libraries have no arenas to limit.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_arenas: i32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_arena_limit() {
        assert!(
            set_arena_max(DEFAULT_ARENAS),
            "mallopt(M_ARENA_MAX) was refused"
        );
    }
}
