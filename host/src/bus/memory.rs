//! The in-process bus. Live subscribers (server-sent-event streams, the demo's
//! recorder) get a bounded queue each and are cut off when it is full, so a
//! subscriber that stopped reading stalls no publisher. Durable subscribers
//! (plugins) read through the journal: an event one of them wants is appended
//! to the log by the one writer task, committed, and only then handed to their
//! queues; a subscriber whose queue is full, or that is not running, reads the
//! log from its cursor later. Publishers never wait on a subscriber.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, mpsc, oneshot};
use yiwang_registry::TopicPattern;

use super::journal::{CursorRow, Logged, MemoryLog, Store};
use super::{
    BoxFuture, Bus, BusError, Delivery, DurableQueue, DurableSubscription, Event, SubscriberStats, Subscription,
    SubscriptionHandle,
};
use crate::db::Db;

/// Appends taken by the writer in one transaction, at most.
const BATCH: usize = 512;
/// How often cursors are saved and the log pruned while the bus is idle.
const TICK: Duration = Duration::from_millis(250);
/// How often the log is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(5);
/// Events read from the log at once by a subscriber catching up.
const READ_BATCH: usize = 512;

struct LiveEntry {
    id: u64,
    name: String,
    patterns: RwLock<Vec<TopicPattern>>,
    tx: mpsc::Sender<Arc<Event>>,
    capacity: usize,
    delivered: AtomicU64,
}

/// A durable subscriber: exists from its first subscription until it is
/// forgotten, whether or not a worker reads it now.
struct DurableEntry {
    name: String,
    patterns: RwLock<Vec<TopicPattern>>,
    capacity: usize,
    /// The queue of the worker reading now, if one is.
    tx: Mutex<Option<mpsc::Sender<Delivery>>>,
    /// Changes with each attach and detach: a worker of an older generation stops.
    generation: AtomicU64,
    /// Its queue overflowed or no worker reads: the writer hands it nothing
    /// until it has caught up from the log.
    behind: AtomicBool,
    wake: Notify,
    /// The last event it has finished with, and the last saved.
    acked: AtomicU64,
    saved: AtomicU64,
    patterns_changed: AtomicBool,
    /// Events appended for it and not yet finished: (seq, appended ms).
    waiting: Mutex<VecDeque<(u64, i64)>>,
    appended: AtomicU64,
    handled: AtomicU64,
}

impl DurableEntry {
    fn new(name: &str, patterns: Vec<TopicPattern>, capacity: usize, seq: u64) -> Self {
        DurableEntry {
            name: name.to_owned(),
            patterns: RwLock::new(patterns),
            capacity: capacity.max(1),
            tx: Mutex::new(None),
            generation: AtomicU64::new(0),
            behind: AtomicBool::new(true),
            wake: Notify::new(),
            acked: AtomicU64::new(seq),
            saved: AtomicU64::new(seq),
            patterns_changed: AtomicBool::new(false),
            waiting: Mutex::new(VecDeque::new()),
            appended: AtomicU64::new(0),
            handled: AtomicU64::new(0),
        }
    }

    fn wants(&self, topic: &str) -> bool {
        self.patterns.read().iter().any(|p| p.matches(topic))
    }

    fn patterns_text(&self) -> String {
        join_patterns(&self.patterns.read())
    }

    fn detach(&self, generation: u64) {
        let mut tx = self.tx.lock();
        if self.generation.load(Ordering::SeqCst) == generation {
            *tx = None;
            self.generation.fetch_add(1, Ordering::SeqCst);
            self.behind.store(true, Ordering::SeqCst);
            self.wake.notify_one();
        }
    }
}

fn join_patterns(patterns: &[TopicPattern]) -> String {
    patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ")
}

enum Op {
    Append { event: Arc<Event>, targets: Vec<Arc<DurableEntry>>, done: oneshot::Sender<Result<(), BusError>> },
    Flush { done: oneshot::Sender<()> },
}

struct Inner {
    live: RwLock<Vec<Arc<LiveEntry>>>,
    durable: RwLock<Vec<Arc<DurableEntry>>>,
    /// Live subscribers cut off because they did not keep up, by name.
    cut: Mutex<HashMap<String, u64>>,
    next_id: AtomicU64,
    store: Store,
    /// The last sequence number committed.
    head: AtomicU64,
    writer: OnceLock<mpsc::UnboundedSender<Op>>,
}

/// The embedded default bus.
#[derive(Clone)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

impl Default for MemoryBus {
    /// A bus whose log is kept in memory (nothing survives the process).
    fn default() -> Self {
        MemoryBus::with_store(Store::Memory(Mutex::new(MemoryLog::default())), 0)
    }
}

impl MemoryBus {
    fn with_store(store: Store, head: u64) -> Self {
        MemoryBus {
            inner: Arc::new(Inner {
                live: RwLock::default(),
                durable: RwLock::default(),
                cut: Mutex::default(),
                next_id: AtomicU64::new(0),
                store,
                head: AtomicU64::new(head),
                writer: OnceLock::new(),
            }),
        }
    }

    /// A bus whose log is in `db`: durable subscribers recorded there are back,
    /// each with the events it has not finished with waiting for it.
    pub async fn durable(db: Db) -> anyhow::Result<Self> {
        let store = Store::Sql(db);
        let (head, cursors) = store.open().await?;
        let head = cursors.iter().map(|c| c.seq).fold(head, u64::max);
        let bus = MemoryBus::with_store(store, head);
        let entries: Vec<Arc<DurableEntry>> = cursors
            .iter()
            .map(|c| {
                let patterns = c.patterns.split_whitespace().filter_map(|p| TopicPattern::parse(p).ok()).collect();
                Arc::new(DurableEntry::new(&c.subscriber, patterns, 1024, c.seq))
            })
            .collect();
        // What each has waiting: one pass over the log from the oldest cursor.
        let mut after = entries.iter().map(|e| e.acked.load(Ordering::Relaxed)).min().unwrap_or(head);
        loop {
            let rows = bus.inner.store.read_after(after, 4096).await?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            for row in &rows {
                for e in &entries {
                    if row.seq > e.acked.load(Ordering::Relaxed) && e.wants(&row.event.topic) {
                        e.waiting.lock().push_back((row.seq, row.appended));
                        e.appended.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        *bus.inner.durable.write() = entries;
        Ok(bus)
    }

    fn writer(&self) -> &mpsc::UnboundedSender<Op> {
        self.inner.writer.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write_loop(Arc::downgrade(&self.inner), rx));
            tx
        })
    }

    fn cut_off(&self, entry: &LiveEntry) {
        let removed = {
            let mut live = self.inner.live.write();
            let before = live.len();
            live.retain(|e| e.id != entry.id);
            before != live.len()
        };
        if removed {
            *self.inner.cut.lock().entry(entry.name.clone()).or_default() += 1;
            tracing::warn!(subscriber = %entry.name, "live subscriber cut off: its queue of {} events was full", entry.capacity);
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The one writer: appends in order, then hands each event to the durable
/// subscribers that want it and are keeping up; saves cursors; prunes.
async fn write_loop(inner: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<Op>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pruned = tokio::time::Instant::now();
    loop {
        let mut ops = Vec::new();
        tokio::select! {
            op = rx.recv() => match op {
                Some(op) => ops.push(op),
                None => return,
            },
            _ = tick.tick() => {}
        }
        while ops.len() < BATCH {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = tokio::time::Instant::now();
            prune(&inner).await;
        }
        let mut appends = Vec::new();
        let mut flushes = Vec::new();
        for op in ops {
            match op {
                Op::Append { event, targets, done } => appends.push((event, targets, done)),
                Op::Flush { done } => flushes.push(done),
            }
        }
        let cursors = changed_cursors(&inner);
        if appends.is_empty() && cursors.is_empty() {
            for done in flushes {
                let _ = done.send(());
            }
            continue;
        }
        let head = inner.head.load(Ordering::SeqCst);
        let appended = now_ms();
        let logged: Vec<Logged> = appends
            .iter()
            .enumerate()
            .map(|(i, (event, _, _))| Logged { seq: head + 1 + i as u64, event: event.clone(), appended })
            .collect();
        match inner.store.append(&logged, &cursors, appended).await {
            Ok(()) => {
                inner.head.store(head + logged.len() as u64, Ordering::SeqCst);
                for c in &cursors {
                    if let Some(e) = inner.durable.read().iter().find(|e| e.name == c.subscriber) {
                        e.saved.fetch_max(c.seq, Ordering::SeqCst);
                    }
                }
                for (log, (_, targets, done)) in logged.iter().zip(appends) {
                    for t in &targets {
                        hand_over(t, log);
                    }
                    let _ = done.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!("the event log could not be written: {e:#}");
                for c in &cursors {
                    if let Some(entry) = inner.durable.read().iter().find(|en| en.name == c.subscriber) {
                        entry.patterns_changed.store(true, Ordering::SeqCst);
                    }
                }
                for (_, _, done) in appends {
                    let _ = done.send(Err(BusError::Unavailable(format!("the event log could not be written: {e}"))));
                }
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Count one committed event for `entry` and put it in its queue, unless it
/// is behind (then it reads the event from the log).
fn hand_over(entry: &DurableEntry, log: &Logged) {
    entry.waiting.lock().push_back((log.seq, log.appended));
    entry.appended.fetch_add(1, Ordering::Relaxed);
    if entry.behind.load(Ordering::SeqCst) {
        return;
    }
    let sent = entry.tx.lock().as_ref().is_some_and(|tx| tx.try_send(Delivery { seq: log.seq, event: log.event.clone() }).is_ok());
    if !sent {
        entry.behind.store(true, Ordering::SeqCst);
        entry.wake.notify_one();
    }
}

fn changed_cursors(inner: &Inner) -> Vec<CursorRow> {
    inner
        .durable
        .read()
        .iter()
        .filter_map(|e| {
            let acked = e.acked.load(Ordering::SeqCst);
            let changed = e.patterns_changed.swap(false, Ordering::SeqCst);
            (changed || acked > e.saved.load(Ordering::SeqCst)).then(|| CursorRow {
                subscriber: e.name.clone(),
                patterns: e.patterns_text(),
                seq: acked,
            })
        })
        .collect()
}

/// Delete what every durable subscriber has finished with (saved cursors only:
/// after a crash, the log still holds what a subscriber is told again).
async fn prune(inner: &Inner) {
    let upto = inner
        .durable
        .read()
        .iter()
        .map(|e| e.saved.load(Ordering::SeqCst))
        .min()
        .unwrap_or_else(|| inner.head.load(Ordering::SeqCst));
    match inner.store.prune(upto).await {
        Ok(0) => {}
        Ok(n) => tracing::debug!("event log: {n} events every subscriber has finished with deleted"),
        Err(e) => tracing::warn!("event log pruning failed: {e:#}"),
    }
}

impl Bus for MemoryBus {
    fn publish(&self, event: Event) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let live: Vec<Arc<LiveEntry>> =
                self.inner.live.read().iter().filter(|e| e.patterns.read().iter().any(|p| p.matches(&event.topic))).cloned().collect();
            let durable: Vec<Arc<DurableEntry>> =
                self.inner.durable.read().iter().filter(|e| e.wants(&event.topic)).cloned().collect();
            let event = Arc::new(event);
            for entry in live {
                match entry.tx.try_send(event.clone()) {
                    Ok(()) => {
                        entry.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => self.cut_off(&entry),
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
            if durable.is_empty() {
                return Ok(());
            }
            let (done, answer) = oneshot::channel();
            self.writer()
                .send(Op::Append { event, targets: durable, done })
                .map_err(|_| BusError::Closed)?;
            answer.await.map_err(|_| BusError::Closed)?
        })
    }

    fn subscribe(&self, name: &str, patterns: Vec<TopicPattern>, capacity: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner.live.write().push(Arc::new(LiveEntry {
            id,
            name: name.to_owned(),
            patterns: RwLock::new(patterns),
            tx,
            capacity: capacity.max(1),
            delivered: AtomicU64::new(0),
        }));
        let inner = Arc::downgrade(&self.inner);
        let retarget_inner = inner.clone();
        Subscription {
            events: rx,
            handle: SubscriptionHandle::new(move || {
                if let Some(inner) = inner.upgrade() {
                    inner.live.write().retain(|e| e.id != id);
                }
            })
            .with_retarget(move |patterns| {
                let Some(inner) = retarget_inner.upgrade() else { return false };
                let live = inner.live.read();
                let Some(entry) = live.iter().find(|e| e.id == id) else { return false };
                *entry.patterns.write() = patterns;
                true
            }),
        }
    }

    fn subscribe_durable(
        &self,
        name: &str,
        patterns: Vec<TopicPattern>,
        capacity: usize,
    ) -> BoxFuture<'_, Result<DurableSubscription, BusError>> {
        let name = name.to_owned();
        Box::pin(async move {
            let unavailable = |e: anyhow::Error| BusError::Unavailable(format!("{e:#}"));
            let text = join_patterns(&patterns);
            let existing = self.inner.durable.read().iter().find(|e| e.name == name).cloned();
            // A new subscriber starts at the head of the log; a known one where it stopped.
            let seq = existing.as_ref().map_or_else(|| self.inner.head.load(Ordering::SeqCst), |e| e.acked.load(Ordering::SeqCst));
            if existing.as_ref().is_none_or(|e| e.patterns_text() != text) {
                self.inner.store.register(&name, &text, seq, now_ms()).await.map_err(unavailable)?;
            }
            let entry = {
                let mut durable = self.inner.durable.write();
                match durable.iter().find(|e| e.name == name) {
                    Some(e) => {
                        *e.patterns.write() = patterns;
                        e.clone()
                    }
                    None => {
                        let e = Arc::new(DurableEntry::new(&name, patterns, capacity, seq));
                        durable.push(e.clone());
                        e
                    }
                }
            };
            let (tx, rx) = mpsc::channel(entry.capacity);
            let generation = {
                let mut slot = entry.tx.lock();
                *slot = Some(tx);
                let generation = entry.generation.fetch_add(1, Ordering::SeqCst) + 1;
                entry.behind.store(true, Ordering::SeqCst);
                generation
            };
            let from = entry.acked.load(Ordering::SeqCst);
            let queue = MemoryQueue {
                entry: entry.clone(),
                inner: Arc::downgrade(&self.inner),
                rx,
                generation,
                pos: from,
                scan: from,
                buffer: VecDeque::new(),
                catching_up: true,
                cleared: false,
            };
            let detach = entry.clone();
            let retarget = Arc::downgrade(&entry);
            Ok(DurableSubscription {
                queue: Box::new(queue),
                handle: SubscriptionHandle::new(move || detach.detach(generation)).with_retarget(move |patterns| {
                    let Some(entry) = retarget.upgrade() else { return false };
                    *entry.patterns.write() = patterns;
                    entry.patterns_changed.store(true, Ordering::SeqCst);
                    true
                }),
            })
        })
    }

    fn forget_durable(&self, name: &str) -> BoxFuture<'_, Result<(), BusError>> {
        let name = name.to_owned();
        Box::pin(async move {
            let removed = {
                let mut durable = self.inner.durable.write();
                let found = durable.iter().position(|e| e.name == name);
                found.map(|i| durable.remove(i))
            };
            if let Some(entry) = removed {
                entry.detach(entry.generation.load(Ordering::SeqCst));
            }
            self.inner.store.unregister(&name).await.map_err(|e| BusError::Unavailable(format!("{e:#}")))
        })
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let (done, answer) = oneshot::channel();
            if self.writer().send(Op::Flush { done }).is_ok() {
                let _ = answer.await;
            }
        })
    }

    fn stats(&self) -> Vec<SubscriberStats> {
        let cut = self.inner.cut.lock().clone();
        let mut stats: Vec<SubscriberStats> = self
            .inner
            .live
            .read()
            .iter()
            .map(|e| SubscriberStats {
                name: e.name.clone(),
                patterns: e.patterns.read().iter().map(|p| p.to_string()).collect(),
                durable: false,
                queued: e.capacity - e.tx.capacity(),
                capacity: e.capacity,
                delivered: e.delivered.load(Ordering::Relaxed),
                dropped: cut.get(&e.name).copied().unwrap_or(0),
                waiting: 0,
                oldest_waiting_ms: None,
                handled: 0,
            })
            .collect();
        for (name, n) in &cut {
            if !stats.iter().any(|s| &s.name == name) {
                stats.push(SubscriberStats {
                    name: name.clone(),
                    patterns: Vec::new(),
                    durable: false,
                    queued: 0,
                    capacity: 0,
                    delivered: 0,
                    dropped: *n,
                    waiting: 0,
                    oldest_waiting_ms: None,
                    handled: 0,
                });
            }
        }
        for e in self.inner.durable.read().iter() {
            let waiting = e.waiting.lock();
            let queued = e.tx.lock().as_ref().map_or(0, |tx| e.capacity - tx.capacity());
            stats.push(SubscriberStats {
                name: e.name.clone(),
                patterns: e.patterns.read().iter().map(|p| p.to_string()).collect(),
                durable: true,
                queued,
                capacity: e.capacity,
                delivered: e.appended.load(Ordering::Relaxed),
                dropped: 0,
                waiting: waiting.len() as u64,
                oldest_waiting_ms: waiting.front().map(|w| w.1),
                handled: e.handled.load(Ordering::Relaxed),
            });
        }
        stats
    }
}

/// A durable subscriber's reader: its queue while it keeps up, the log while
/// it catches up.
struct MemoryQueue {
    entry: Arc<DurableEntry>,
    inner: Weak<Inner>,
    rx: mpsc::Receiver<Delivery>,
    generation: u64,
    /// The last event handed out.
    pos: u64,
    /// How far the log has been read while catching up.
    scan: u64,
    buffer: VecDeque<Delivery>,
    catching_up: bool,
    /// `behind` was cleared; one more read of the log decides.
    cleared: bool,
}

impl MemoryQueue {
    async fn next_delivery(&mut self) -> Option<Delivery> {
        loop {
            if self.entry.generation.load(Ordering::SeqCst) != self.generation {
                return None;
            }
            if let Some(d) = self.buffer.pop_front() {
                if d.seq > self.pos {
                    self.pos = d.seq;
                    return Some(d);
                }
                continue;
            }
            if self.catching_up {
                let inner = self.inner.upgrade()?;
                let rows = match inner.store.read_after(self.scan, READ_BATCH).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        tracing::warn!(subscriber = %self.entry.name, "reading the event log failed: {e:#}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                drop(inner);
                let Some(last) = rows.last() else {
                    if self.cleared {
                        // Caught up: from now on the queue carries what comes.
                        self.catching_up = false;
                        self.cleared = false;
                    } else {
                        // Ask the writer for new events, then read once more
                        // for those committed before it saw the request.
                        self.entry.behind.store(false, Ordering::SeqCst);
                        self.cleared = true;
                    }
                    continue;
                };
                self.scan = last.seq;
                for row in rows {
                    if self.entry.wants(&row.event.topic) {
                        self.buffer.push_back(Delivery { seq: row.seq, event: row.event });
                    }
                }
                continue;
            }
            match self.rx.try_recv() {
                Ok(d) => self.buffer.push_back(d),
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if self.entry.behind.load(Ordering::SeqCst) {
                        self.catching_up = true;
                        self.scan = self.pos;
                        continue;
                    }
                    tokio::select! {
                        d = self.rx.recv() => match d {
                            Some(d) => self.buffer.push_back(d),
                            None => return None,
                        },
                        _ = self.entry.wake.notified() => {}
                    }
                }
            }
        }
    }
}

impl DurableQueue for MemoryQueue {
    fn next(&mut self) -> BoxFuture<'_, Option<Delivery>> {
        Box::pin(self.next_delivery())
    }

    fn ack(&mut self, seq: u64) {
        self.entry.acked.fetch_max(seq, Ordering::SeqCst);
        self.entry.handled.fetch_add(1, Ordering::Relaxed);
        let mut waiting = self.entry.waiting.lock();
        while waiting.front().is_some_and(|w| w.0 <= seq) {
            waiting.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(topic: &str, n: usize) -> Event {
        Event { id: format!("{topic}-{n}"), topic: topic.into(), source: "test".into(), time: 0, location: None, payload: "{}".into() }
    }

    fn pats(p: &[&str]) -> Vec<TopicPattern> {
        p.iter().map(|p| TopicPattern::parse(p).unwrap()).collect()
    }

    async fn take(sub: &mut DurableSubscription, n: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for _ in 0..n {
            let d = tokio::time::timeout(Duration::from_secs(10), sub.queue.next()).await.expect("an event in time").expect("open");
            ids.push(d.event.id.clone());
            sub.queue.ack(d.seq);
        }
        ids
    }

    fn ids(topic: &str, range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|n| format!("{topic}-{n}")).collect()
    }

    #[tokio::test]
    async fn live_subscribers_route_by_pattern_in_order() {
        let bus = MemoryBus::default();
        let mut reports = bus.subscribe("r", pats(&["report.*"]), 8);
        let mut all = bus.subscribe("a", pats(&[">"]), 8);
        for t in ["report.snapshot", "iot.reading.x", "report.hotline"] {
            bus.publish(event(t, 0)).await.unwrap();
        }
        assert_eq!(reports.events.recv().await.unwrap().topic, "report.snapshot");
        assert_eq!(reports.events.recv().await.unwrap().topic, "report.hotline");
        assert!(reports.events.try_recv().is_err());
        for t in ["report.snapshot", "iot.reading.x", "report.hotline"] {
            assert_eq!(all.events.recv().await.unwrap().topic, t);
        }
    }

    #[tokio::test]
    async fn a_live_subscriber_that_stops_reading_is_cut_off_and_nobody_waits() {
        let bus = MemoryBus::default();
        let mut stuck = bus.subscribe("sse:inbox", pats(&["x"]), 2);
        let mut reading = bus.subscribe("reader", pats(&["x"]), 100);
        // Publishing never waits for the stuck subscriber's room (the test
        // would hang here if it did).
        for n in 0..50 {
            bus.publish(event("x", n)).await.unwrap();
        }
        // What it had queued is still there; then its stream ends.
        assert_eq!(stuck.events.recv().await.unwrap().id, "x-0");
        assert_eq!(stuck.events.recv().await.unwrap().id, "x-1");
        assert!(stuck.events.recv().await.is_none(), "cut off");
        let stats = bus.stats();
        let s = stats.iter().find(|s| s.name == "sse:inbox").unwrap();
        assert_eq!(s.dropped, 1, "one cut-off counted: {stats:?}");
        for n in 0..50 {
            assert_eq!(reading.events.recv().await.unwrap().id, format!("x-{n}"), "the other subscriber got everything");
        }
    }

    #[tokio::test]
    async fn a_durable_subscriber_that_falls_behind_gets_every_event_once_in_order() {
        let bus = MemoryBus::default();
        let mut sub = bus.subscribe_durable("plugin", pats(&["a.>"]), 4).await.unwrap();
        // Far more than its queue holds, with other topics between.
        for n in 0..300 {
            bus.publish(event("a.b", n)).await.unwrap();
            bus.publish(event("z", n)).await.unwrap();
        }
        let stats = bus.stats();
        let s = stats.iter().find(|s| s.name == "plugin").unwrap();
        assert!(s.durable);
        assert_eq!(s.waiting, 300, "{s:?}");
        assert_eq!(take(&mut sub, 300).await, ids("a.b", 0..300));
        // Caught up: new events come through the queue again.
        for n in 300..310 {
            bus.publish(event("a.b", n)).await.unwrap();
        }
        assert_eq!(take(&mut sub, 10).await, ids("a.b", 300..310));
        let stats = bus.stats();
        let s = stats.iter().find(|s| s.name == "plugin").unwrap();
        assert_eq!((s.waiting, s.handled), (0, 310), "{s:?}");
    }

    #[tokio::test]
    async fn events_published_while_no_one_reads_wait_for_the_next_reader() {
        let bus = MemoryBus::default();
        let mut sub = bus.subscribe_durable("plugin", pats(&["a"]), 16).await.unwrap();
        bus.publish(event("a", 0)).await.unwrap();
        assert_eq!(take(&mut sub, 1).await, ids("a", 0..1));
        // The reader goes (a disabled plugin); the events stay for it.
        drop(sub);
        for n in 1..40 {
            bus.publish(event("a", n)).await.unwrap();
        }
        let mut again = bus.subscribe_durable("plugin", pats(&["a"]), 16).await.unwrap();
        bus.publish(event("a", 40)).await.unwrap();
        assert_eq!(take(&mut again, 40).await, ids("a", 1..41));
        // Forgotten: its events are no longer kept.
        drop(again);
        bus.forget_durable("plugin").await.unwrap();
        bus.publish(event("a", 41)).await.unwrap();
        assert!(bus.stats().iter().all(|s| s.name != "plugin"));
    }

    #[tokio::test]
    async fn a_new_reader_ends_the_previous_one() {
        let bus = MemoryBus::default();
        let mut first = bus.subscribe_durable("plugin", pats(&["a"]), 16).await.unwrap();
        let mut second = bus.subscribe_durable("plugin", pats(&["a"]), 16).await.unwrap();
        bus.publish(event("a", 0)).await.unwrap();
        assert!(first.queue.next().await.is_none(), "the older reader stops");
        assert_eq!(take(&mut second, 1).await, ids("a", 0..1));
    }

    #[tokio::test]
    async fn the_log_and_positions_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(dir.path()).await.unwrap();
        {
            let bus = MemoryBus::durable(db.clone()).await.unwrap();
            let mut sub = bus.subscribe_durable("plugin", pats(&["a"]), 8).await.unwrap();
            for n in 0..30 {
                bus.publish(event("a", n)).await.unwrap();
            }
            assert_eq!(take(&mut sub, 12).await, ids("a", 0..12));
            bus.flush().await;
        }
        let bus = MemoryBus::durable(db.clone()).await.unwrap();
        let stats = bus.stats();
        let s = stats.iter().find(|s| s.name == "plugin").expect("known after the restart");
        assert_eq!(s.waiting, 18, "{s:?}");
        let mut sub = bus.subscribe_durable("plugin", pats(&["a"]), 8).await.unwrap();
        bus.publish(event("a", 30)).await.unwrap();
        assert_eq!(take(&mut sub, 19).await, ids("a", 12..31));
        // What everyone has finished with is pruned from the log.
        bus.flush().await;
        super::prune(&bus.inner).await;
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bus_events").fetch_one(db.pool()).await.unwrap();
        assert_eq!(left, 0);
    }
}
