//! Test guest `spin`: a handler that never returns.
//!
//! The host must interrupt it at the per-call CPU deadline (`cpu-ms`), throw the instance
//! away and go on serving other plugins.

use std::hint::black_box;

use yiwang_sdk::prelude::*;

struct Spin;

impl Plugin for Spin {
    fn handle(_event: Event) -> Result<(), Error> {
        let mut turns: u64 = 0;
        // `black_box` keeps the optimiser from proving the loop has no effect.
        loop {
            turns = black_box(turns.wrapping_add(1));
        }
    }
}

export_plugin!(Spin);
