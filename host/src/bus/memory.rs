//! The in-process bus: a list of subscriptions, each with a bounded tokio queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::mpsc;
use yiwang_registry::TopicPattern;

use super::{BoxFuture, Bus, BusError, Event, SubscriberStats, Subscription, SubscriptionHandle};

struct Entry {
    id: u64,
    name: String,
    /// Changed in place when a plugin's new version subscribes to other topics.
    patterns: RwLock<Vec<TopicPattern>>,
    tx: mpsc::Sender<Arc<Event>>,
    capacity: usize,
    delivered: AtomicU64,
    dropped: AtomicU64,
}

impl Entry {
    fn wants(&self, topic: &str) -> bool {
        self.patterns.read().iter().any(|p| p.matches(topic))
    }
}

#[derive(Default)]
struct Inner {
    entries: RwLock<Vec<Arc<Entry>>>,
    next_id: AtomicU64,
}

/// The embedded default bus.
#[derive(Clone)]
pub struct MemoryBus {
    inner: Arc<Inner>,
    /// How long a publisher waits on one full queue before that subscriber's
    /// copy is dropped (and counted), so one stuck subscriber cannot stall the city.
    max_wait: Duration,
}

impl MemoryBus {
    pub fn new(max_wait: Duration) -> Self {
        MemoryBus { inner: Arc::default(), max_wait }
    }
}

impl Default for MemoryBus {
    fn default() -> Self {
        MemoryBus::new(Duration::from_secs(5))
    }
}

impl Bus for MemoryBus {
    fn publish(&self, event: Event) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let targets: Vec<Arc<Entry>> = {
                let entries = self.inner.entries.read();
                entries.iter().filter(|e| e.wants(&event.topic)).cloned().collect()
            };
            if targets.is_empty() {
                return Ok(());
            }
            let event = Arc::new(event);
            for entry in targets {
                // The fast path takes no timer; only a full queue waits.
                let sent = match entry.tx.try_send(event.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                    Err(mpsc::error::TrySendError::Full(ev)) => {
                        match tokio::time::timeout(self.max_wait, entry.tx.send(ev)).await {
                            Ok(Ok(())) => true,
                            Ok(Err(_)) => false,
                            Err(_) => {
                                entry.dropped.fetch_add(1, Ordering::Relaxed);
                                tracing::warn!(
                                    subscriber = %entry.name,
                                    topic = %event.topic,
                                    "queue full for {:?}; event dropped for this subscriber",
                                    self.max_wait
                                );
                                false
                            }
                        }
                    }
                };
                if sent {
                    entry.delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        })
    }

    fn subscribe(&self, name: &str, patterns: Vec<TopicPattern>, capacity: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner.entries.write().push(Arc::new(Entry {
            id,
            name: name.to_owned(),
            patterns: RwLock::new(patterns),
            tx,
            capacity: capacity.max(1),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }));
        let inner = Arc::downgrade(&self.inner);
        let retarget_inner = inner.clone();
        Subscription {
            events: rx,
            handle: SubscriptionHandle::new(move || {
                if let Some(inner) = inner.upgrade() {
                    inner.entries.write().retain(|e| e.id != id);
                }
            })
            .with_retarget(move |patterns| {
                let Some(inner) = retarget_inner.upgrade() else { return false };
                let entries = inner.entries.read();
                let Some(entry) = entries.iter().find(|e| e.id == id) else { return false };
                *entry.patterns.write() = patterns;
                true
            }),
        }
    }

    fn stats(&self) -> Vec<SubscriberStats> {
        self.inner
            .entries
            .read()
            .iter()
            .map(|e| SubscriberStats {
                name: e.name.clone(),
                patterns: e.patterns.read().iter().map(|p| p.to_string()).collect(),
                queued: e.capacity - e.tx.capacity(),
                capacity: e.capacity,
                delivered: e.delivered.load(Ordering::Relaxed),
                dropped: e.dropped.load(Ordering::Relaxed),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(topic: &str) -> Event {
        Event {
            id: topic.into(),
            topic: topic.into(),
            source: "test".into(),
            time: 0,
            location: None,
            payload: "{}".into(),
        }
    }

    fn pats(p: &[&str]) -> Vec<TopicPattern> {
        p.iter().map(|p| TopicPattern::parse(p).unwrap()).collect()
    }

    #[tokio::test]
    async fn routes_by_pattern_in_order() {
        let bus = MemoryBus::default();
        let mut reports = bus.subscribe("r", pats(&["report.*"]), 8);
        let mut all = bus.subscribe("a", pats(&[">"]), 8);
        for t in ["report.snapshot", "iot.reading.x", "report.hotline"] {
            bus.publish(event(t)).await.unwrap();
        }
        assert_eq!(reports.events.recv().await.unwrap().topic, "report.snapshot");
        assert_eq!(reports.events.recv().await.unwrap().topic, "report.hotline");
        assert!(reports.events.try_recv().is_err());
        for t in ["report.snapshot", "iot.reading.x", "report.hotline"] {
            assert_eq!(all.events.recv().await.unwrap().topic, t);
        }
    }

    #[tokio::test]
    async fn full_queue_applies_backpressure_then_drops() {
        let bus = MemoryBus::new(Duration::from_millis(50));
        let mut sub = bus.subscribe("slow", pats(&["x"]), 1);
        bus.publish(event("x")).await.unwrap();
        // The queue is full: the next publish waits, then gives up on this subscriber.
        let started = std::time::Instant::now();
        bus.publish(event("x")).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(bus.stats()[0].dropped, 1);
        // A publish that finds room while waiting is delivered.
        let bus2 = bus.clone();
        let waiter = tokio::spawn(async move { bus2.publish(event("x")).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        sub.events.recv().await.unwrap();
        waiter.await.unwrap().unwrap();
        assert_eq!(bus.stats()[0].delivered, 2);
    }

    #[tokio::test]
    async fn retargeting_keeps_the_queue_and_its_order() {
        let bus = MemoryBus::default();
        let mut sub = bus.subscribe("p", pats(&["a"]), 8);
        bus.publish(event("a")).await.unwrap();
        assert!(sub.handle.set_patterns(pats(&["b"])));
        bus.publish(event("a")).await.unwrap();
        bus.publish(event("b")).await.unwrap();
        // What was queued before stays queued; afterwards only the new topics arrive.
        assert_eq!(sub.events.recv().await.unwrap().topic, "a");
        assert_eq!(sub.events.recv().await.unwrap().topic, "b");
        assert!(sub.events.try_recv().is_err());
        assert_eq!(bus.stats()[0].patterns, vec!["b".to_owned()]);
    }

    #[tokio::test]
    async fn dropping_the_handle_unsubscribes() {
        let bus = MemoryBus::default();
        let sub = bus.subscribe("gone", pats(&["x"]), 4);
        assert_eq!(bus.stats().len(), 1);
        drop(sub);
        assert!(bus.stats().is_empty());
        bus.publish(event("x")).await.unwrap();
    }
}
