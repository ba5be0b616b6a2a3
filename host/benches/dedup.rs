//! Deduplication candidate lookups against 1,000,000 open cases spread over a
//! city-sized area (50 km × 50 km around 南京: 60 % in 300 hot spots, 40 %
//! anywhere), with a realistic mix of category codes and texts built from a
//! small vocabulary (road, number, landmark, problem, remark), reported over
//! the last 30 days. Targets: p99 ≤ 1 ms per lookup, index ≤ 256 MiB.
//!
//! Run: `cargo bench -p yiwang --bench dedup`. Before criterion's benchmarks
//! it prints, for a bulk-built index (`DedupIndex::from_cases`, how the engine
//! loads the open cases at start) and for one built by single inserts (how it
//! grows in operation): the heap the index holds (counted by this binary's
//! global allocator: bytes requested, so the C allocator's own rounding is
//! left out), how much the process grew, the build time, and p50/p99/max of
//! 10,000 timed lookups (half repeat an open case, half are new incidents).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use yiwang::bus::GeoPoint;
use yiwang::cases::dedup::{DedupIndex, DedupRules, Report};

/// Counts the bytes the program holds and the most it held.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = HELD.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// A global allocator is an unsafe trait; this one hands every call to `System`
// unchanged and only counts the sizes it was asked for.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            HELD.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CASES: usize = 1_000_000;
const LOOKUPS: usize = 10_000;
const CENTRE: GeoPoint = GeoPoint { lat: 32.05, lon: 118.78 };
const SIDE_M: f64 = 50_000.0;
/// 2026-12-01T00:00:00Z, "now" for the benchmark.
const NOW: i64 = 1_796_083_200_000;
const DAY_MS: i64 = 86_400_000;

/// Category codes, how often each is reported (per mille), and its problems.
const CATEGORIES: &[(&str, u32, &[&str])] = &[
    ("0101", 120, &["井盖缺失", "井盖破损", "井盖松动", "井盖丢了"]),
    ("0109", 80, &["路灯不亮", "路灯倒伏", "路灯一直闪"]),
    ("0111", 30, &["消防栓漏水", "消防栓被撞坏"]),
    ("0201", 50, &["交通标志牌损坏", "指示牌被遮挡"]),
    ("0206", 50, &["护栏损坏", "隔离栏倒了"]),
    ("0301", 150, &["垃圾桶满溢", "垃圾桶破损", "垃圾没人清运"]),
    ("0303", 50, &["公厕脏乱", "公厕没水"]),
    ("0305", 40, &["广告牌破损", "广告牌松动"]),
    ("0401", 80, &["树木倒伏", "树枝折断", "行道树枯死"]),
    ("0402", 40, &["绿地被毁", "草坪被踩坏"]),
    ("0501", 60, &["违章搭建", "私搭乱建"]),
    ("0502", 30, &["外墙脱落", "墙皮掉落"]),
    ("0601", 100, &["占道经营", "流动摊贩"]),
    ("0602", 80, &["噪音扰民", "夜间施工噪音"]),
    ("0701", 40, &["其他问题", "有异味"]),
];
const ROADS: &[&str] = &[
    "中山路", "中山北路", "中山南路", "中山东路", "北京东路", "北京西路", "汉中路", "广州路", "上海路", "湖南路",
    "珠江路", "长江路", "太平南路", "洪武路", "龙蟠中路", "虎踞路", "草场门大街", "江东中路", "应天大街", "集庆路",
    "建邺路", "升州路", "白下路", "瑞金路", "御道街", "光华路", "中央路", "玄武大道", "新模范马路", "模范西路",
    "水西门大街", "凤台南路", "雨花大道", "软件大道", "宁南大道", "河西大街", "江山大街", "燕山路", "仙林大道", "学海路",
];
const PLACES: &[&str] = &[
    "门前", "东侧", "西侧", "对面", "路口", "小区门口", "公交站旁", "附近", "十字路口", "人行道上", "地铁站出口", "学校门口",
];
const REMARKS: &[&str] = &["", "很危险", "请尽快处理", "已经好几天了", "影响通行", "晚上看不清", "多次反映没人管", "孩子上学路过"];

/// xorshift64*, from a fixed seed, so every run builds the same city.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// A standard normal deviate (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// `north` and `east` metres from `p`.
fn moved(p: GeoPoint, north: f64, east: f64) -> GeoPoint {
    const R: f64 = 6_371_008.8;
    GeoPoint { lat: p.lat + (north / R).to_degrees(), lon: p.lon + (east / (R * p.lat.to_radians().cos())).to_degrees() }
}

struct Case {
    id: String,
    code: &'static str,
    problem: &'static str,
    road: &'static str,
    number: usize,
    location: GeoPoint,
    reported_ms: i64,
    text: String,
    /// For a query that repeats an open case: that case's report time.
    repeats_ms: Option<i64>,
}

impl Case {
    fn report(&self) -> Report<'_> {
        Report { category_code: self.code, location: self.location, reported_ms: self.reported_ms, text: &self.text }
    }
}

fn category(rng: &mut Rng) -> (&'static str, &'static [&'static str]) {
    let mut roll = rng.below(1000) as u32;
    for &(code, per_mille, problems) in CATEGORIES {
        if roll < per_mille {
            return (code, problems);
        }
        roll -= per_mille;
    }
    let &(code, _, problems) = CATEGORIES.last().expect("categories");
    (code, problems)
}

fn text(rng: &mut Rng, road: &str, number: usize, problem: &str) -> String {
    format!("{road}{number}号{}{problem}{}", rng.pick(PLACES), rng.pick(REMARKS))
}

/// An id shaped like the engine's (a UUID in text, 36 bytes).
fn id(rng: &mut Rng) -> String {
    let (a, b) = (rng.next(), rng.next());
    format!("{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff, a & 0xfff, b >> 48, b & 0xffff_ffff_ffff)
}

fn city(rng: &mut Rng) -> Vec<Case> {
    let half = SIDE_M / 2.0;
    let spots: Vec<(f64, f64)> = (0..300).map(|_| ((rng.unit() - 0.5) * SIDE_M, (rng.unit() - 0.5) * SIDE_M)).collect();
    (0..CASES)
        .map(|_| {
            let (north, east) = if rng.below(10) < 6 {
                let &(n, e) = rng.pick(&spots);
                ((n + 800.0 * rng.normal()).clamp(-half, half), (e + 800.0 * rng.normal()).clamp(-half, half))
            } else {
                ((rng.unit() - 0.5) * SIDE_M, (rng.unit() - 0.5) * SIDE_M)
            };
            let (code, problems) = category(rng);
            let problem = *rng.pick(problems);
            let road = *rng.pick(ROADS);
            let number = 1 + rng.below(300);
            Case {
                id: id(rng),
                code,
                problem,
                road,
                number,
                location: moved(CENTRE, north, east),
                reported_ms: NOW - (rng.unit() * 30.0 * DAY_MS as f64) as i64,
                text: text(rng, road, number, problem),
                repeats_ms: None,
            }
        })
        .collect()
}

/// Half repeat an open case (another wording, up to ~60 m away, now), half
/// are new incidents anywhere.
fn queries(rng: &mut Rng, cases: &[Case]) -> Vec<Case> {
    (0..LOOKUPS)
        .map(|i| {
            if i % 2 == 0 {
                let c = rng.pick(cases);
                Case {
                    id: String::new(),
                    location: moved(c.location, 40.0 * (rng.unit() - 0.5), 40.0 * (rng.unit() - 0.5)),
                    reported_ms: NOW,
                    text: text(rng, c.road, c.number, c.problem),
                    repeats_ms: Some(c.reported_ms),
                    ..*c
                }
            } else {
                let (code, problems) = category(rng);
                let problem = *rng.pick(problems);
                let (road, number) = (*rng.pick(ROADS), 1 + rng.below(300));
                let location = moved(CENTRE, (rng.unit() - 0.5) * SIDE_M, (rng.unit() - 0.5) * SIDE_M);
                let text = text(rng, road, number, problem);
                Case { id: String::new(), code, problem, road, number, location, reported_ms: NOW, text, repeats_ms: None }
            }
        })
        .collect()
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

/// Build with `build`, report memory and time, then time the lookups one by one.
fn measure(what: &str, queries: &[Case], build: impl FnOnce() -> DedupIndex) -> DedupIndex {
    let (held, rss) = (HELD.load(Ordering::Relaxed), resident_bytes());
    PEAK.store(held, Ordering::Relaxed);
    let started = Instant::now();
    let index = build();
    let took = started.elapsed();
    let (now, peak) = (HELD.load(Ordering::Relaxed), PEAK.load(Ordering::Relaxed));
    let grown = match (rss, resident_bytes()) {
        (Some(a), Some(b)) => format!("{:.1} MiB", mib(b.saturating_sub(a) as f64)),
        _ => "unknown".into(),
    };
    println!(
        "{what}: {} cases in {:.2} s; index heap {:.1} MiB ({} B a case), peak while building +{:.1} MiB; process grew {grown}",
        index.len(),
        took.as_secs_f64(),
        mib((now - held) as f64),
        (now - held) / index.len(),
        mib((peak - held) as f64),
    );

    let reports: Vec<Report<'_>> = queries.iter().map(Case::report).collect();
    // A repeat can be found when its open case is within its family's window.
    let findable: Vec<bool> = queries
        .iter()
        .map(|q| {
            let window = index.rules().family_of(q.code).expect("a valid code").1.window_ms;
            q.repeats_ms.is_some_and(|t| q.reported_ms - t <= window)
        })
        .collect();
    // Warm the caches the way a running server has them.
    for r in reports.iter().take(1000) {
        black_box(index.candidates(r));
    }
    let mut times = Vec::with_capacity(reports.len());
    let (mut found, mut repeats_found) = (0, 0);
    let findable_count = findable.iter().filter(|&&f| f).count();
    for (i, r) in reports.iter().enumerate() {
        let t = Instant::now();
        let c = black_box(index.candidates(black_box(r)));
        times.push(t.elapsed());
        found += c.len();
        repeats_found += usize::from(findable[i] && !c.is_empty());
    }
    times.sort_unstable();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{what}: {} lookups: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs; {:.2} candidates a lookup; {} of {} repeats within their window found one",
        times.len(),
        us(at(0.50)),
        us(at(0.99)),
        us(*times.last().expect("lookups")),
        found as f64 / times.len() as f64,
        repeats_found,
        findable_count,
    );
    index
}

fn main() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let cases = city(&mut rng);
    let queries = queries(&mut rng, &cases);
    let rules = DedupRules::default();

    let inserted = measure("single inserts", &queries, || {
        let mut index = DedupIndex::new(rules.clone());
        for c in &cases {
            index.insert(&c.id, &c.report()).expect("a valid case");
        }
        index
    });
    drop(inserted);
    let index = measure("bulk build", &queries, || {
        DedupIndex::from_cases(rules.clone(), cases.iter().map(|c| (c.id.as_str(), c.report()))).expect("valid cases")
    });

    let reports: Vec<Report<'_>> = queries.iter().map(Case::report).collect();
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("dedup-1m");
    let mut k = 0;
    group.bench_function("candidates", |b| {
        b.iter(|| {
            k = (k + 1) % reports.len();
            black_box(index.candidates(black_box(&reports[k])))
        })
    });
    group.bench_function("candidates_repeat", |b| {
        b.iter(|| {
            k = ((k + 2) % reports.len()) & !1;
            black_box(index.candidates(black_box(&reports[k])))
        })
    });
    drop(group);
    // Opening and closing a case: insert into and remove from the live index.
    let mut index = index;
    let mut group = c.benchmark_group("dedup-1m");
    group.bench_function("insert_remove", |b| {
        b.iter(|| {
            k = (k + 1) % reports.len();
            index.insert("bench-new-case", &reports[k]).expect("a valid case");
            black_box(index.remove("bench-new-case"))
        })
    });
    group.finish();
    c.final_summary();
}
