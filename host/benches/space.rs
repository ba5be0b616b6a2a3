//! The spatial index under load: 100,000 synthetic grid cells (a 400 × 250
//! block of 0.001° squares over 南京, ~94 m × 111 m each), queried at random
//! points. The target is ≤ 5 µs per point → grid lookup.
//!
//! Run: `cargo bench -p yiwang --bench space`. Before the benchmarks it prints
//! how much the process grew while the index was built (Linux only).

use std::hint::black_box;

use criterion::Criterion;
use geo::{MultiPolygon, Rect};
use yiwang::bus::GeoPoint;
use yiwang::space::{AreaRef, IndexedArea, Level, SpaceIndex};

const COLUMNS: usize = 400;
const ROWS: usize = 250;
const CELL_DEGREES: f64 = 0.001;
const WEST: f64 = 118.6;
const SOUTH: f64 = 31.9;

/// Cell `i` of the block, coded like a real one: district 320102, then street,
/// community and grid numbers (50 cells a community, 200 communities a street).
fn cell(i: usize) -> IndexedArea {
    let (column, row) = (i % COLUMNS, i / COLUMNS);
    let (street, community, grid) = (i / 10_000 + 1, (i / 50) % 200 + 1, i % 50 + 1);
    let parent = format!("320102{street:03}{community:03}");
    let w = WEST + column as f64 * CELL_DEGREES;
    let s = SOUTH + row as f64 * CELL_DEGREES;
    IndexedArea {
        area: AreaRef {
            code: format!("{parent}{grid:02}"),
            name: format!("网格 {i}"),
            level: Level::Grid,
            parent: Some(parent),
        },
        shape: MultiPolygon::new(vec![Rect::new((w, s), (w + CELL_DEGREES, s + CELL_DEGREES)).to_polygon()]),
    }
}

/// Uniform points over the block, from a fixed seed (xorshift64*), so every run
/// asks the same questions.
fn points(n: usize) -> Vec<GeoPoint> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| GeoPoint {
            lon: WEST + next() * COLUMNS as f64 * CELL_DEGREES,
            lat: SOUTH + next() * ROWS as f64 * CELL_DEGREES,
        })
        .collect()
}

/// The resident set size of this process in bytes, where the OS tells it.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    let before = resident_bytes();
    let index = SpaceIndex::new((0..COLUMNS * ROWS).map(cell).collect());
    let after = resident_bytes();
    let cells = index.len_at(Level::Grid);
    if let (Some(before), Some(after)) = (before, after) {
        let grown = after.saturating_sub(before);
        println!(
            "index: {cells} grid cells; the process grew by {:.1} MiB while building it (~{} B a cell)",
            grown as f64 / (1024.0 * 1024.0),
            grown / cells as u64
        );
    }

    let queries = points(4096);
    // Every query point lies in the block, so every lookup must find a cell.
    assert!(queries.iter().all(|&p| index.grid_at(p).is_some()));

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("space-100k");
    let mut k = 0;
    group.bench_function("grid_at", |b| {
        b.iter(|| {
            k = (k + 1) % queries.len();
            black_box(index.grid_at(black_box(queries[k])))
        })
    });
    // What `Space::grid_at` returns: a copy of the cell's identity.
    group.bench_function("grid_at_owned", |b| {
        b.iter(|| {
            k = (k + 1) % queries.len();
            black_box(index.grid_at(black_box(queries[k])).cloned())
        })
    });
    group.bench_function("areas_at", |b| {
        b.iter(|| {
            k = (k + 1) % queries.len();
            black_box(index.areas_at(black_box(queries[k])))
        })
    });
    group.bench_function("grids_within_radius_300m", |b| {
        b.iter(|| {
            k = (k + 1) % queries.len();
            black_box(index.grids_within_radius(black_box(queries[k]), 300.0))
        })
    });
    group.finish();
    c.final_summary();
}
