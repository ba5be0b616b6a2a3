//! Test guest `recurse`: a handler that recurses without bound.
//!
//! Each frame keeps a buffer alive across the recursive call and uses the call's result
//! afterwards, so the recursion cannot become a loop. The stack runs out and the
//! instance traps; the host must survive it.

use std::hint::black_box;

use yiwang_sdk::prelude::*;

#[inline(never)]
fn dive(depth: u64) -> u64 {
    // The stop condition is never met, but the compiler cannot know that.
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let frame = black_box([depth; 16]);
    let below = dive(black_box(depth + 1));
    below.wrapping_add(black_box(frame)[(depth % 16) as usize])
}

struct Recurse;

impl Plugin for Recurse {
    fn handle(_event: Event) -> Result<(), Error> {
        let depth = dive(0);
        Err(Error::Invalid(format!(
            "the recursion ended at depth {depth}"
        )))
    }
}

export_plugin!(Recurse);
