//! Test guest `membomb`: a handler that allocates without bound.
//!
//! It keeps 1 MiB chunks and writes to every page of each, so the memory is really
//! used. The host's memory cap (`memory-mib`) must refuse the growth and trap the
//! instance long before the host itself runs short.

use std::hint::black_box;

use yiwang_sdk::prelude::*;

const CHUNK: usize = 1 << 20;
const PAGE: usize = 4096;

struct Membomb;

impl Plugin for Membomb {
    fn handle(_event: Event) -> Result<(), Error> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut chunk = vec![0u8; CHUNK];
            for (page, byte) in chunk.iter_mut().step_by(PAGE).enumerate() {
                // Truncation is intended: any non-zero byte will do.
                *byte = (page as u8) | 1;
            }
            hoard.push(black_box(chunk));
        }
    }
}

export_plugin!(Membomb);
