//! The per-host connection cap: every webhook whose URL names the same scheme, host and port
//! shares `[delivery] max_connections_per_host` connections, taken in turn.
//!
//! A broadcast to a thousand webhooks on one ingress would otherwise open up to `max_in_flight`
//! connections per webhook, thousands to one host, and the host refuses and resets them. Each
//! attempt holds a *permit* of its host from before it is sent (before its entry is even read,
//! so nothing is read that cannot go) until its answer. With no permit free, the actor queues
//! for its host; each permit given back goes to the first actor in the queue ([`HostRoom`]
//! tells it), one per actor in turn, and a new request never overtakes the queue: every
//! webhook of a crowded host keeps moving, none starves.
//!
//! The cap is split between the delivery threads (an equal share each, at least one), and
//! each thread's gates are its own (`thread_local`): the actors of a thread share one HTTP
//! client and its keep-alive pool, so a thread never holds more connections to a host than
//! its share of permits, and the connections open to a host, idle ones included, never exceed
//! the cap (or the number of threads, for a smaller cap). No lock is taken on the delivery
//! path. The gate, not the actor, keeps what each actor holds ([`Holder`]): an actor that stops
//! gives back everything, even a permit handed to it in a message it never read.
//!
//! What each host's gates hold is also summed process-wide ([`HostFigures`]) for `/health`,
//! `/metrics` and the dashboard.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};

use actix::prelude::*;
use dashmap::DashMap;

/// scheme://host:port of a webhook's URL.
pub type HostKey = Arc<str>;

/// The key of the host `url` names.
pub fn host_key(url: &url::Url) -> HostKey {
    let port = url.port_or_known_default().unwrap_or(0);
    format!("{}://{}:{port}", url.scheme(), url.host_str().unwrap_or_default()).into()
}

/// A permit of the actor's host was handed to it: take work.
#[derive(Message)]
#[rtype(result = "()")]
pub struct HostRoom;

/// One delivery actor's standing at its host's gate on its thread.
#[derive(Debug)]
pub struct Holder {
    pub host: HostKey,
    /// Unique on the thread (a webhook's successor actor is another holder).
    id: u64,
}

/// One host's permits on this thread.
struct Gate {
    share: usize,
    /// Permits held, by holder.
    held: HashMap<u64, usize>,
    in_use: usize,
    /// Holders waiting for a permit, each once, served in turn.
    waiting: VecDeque<(u64, Recipient<HostRoom>)>,
    figures: Arc<HostFigures>,
}

thread_local! {
    static GATES: RefCell<HashMap<HostKey, Gate>> = RefCell::new(HashMap::new());
    static NEXT_HOLDER: Cell<u64> = const { Cell::new(0) };
    /// This delivery thread's place among them: (index, count), set at start-up.
    static THREAD: Cell<(usize, usize)> = const { Cell::new((0, 1)) };
}

/// A host's connections and waiting actors, summed over the threads.
#[derive(Debug, Default)]
pub struct HostFigures {
    pub in_use: AtomicI64,
    pub waiting: AtomicI64,
    pub cap: AtomicI64,
}

/// Every host's figures, process-wide.
pub static HOSTS: LazyLock<DashMap<HostKey, Arc<HostFigures>>> = LazyLock::new(DashMap::new);

/// Tells this thread which delivery thread it is, of how many (at start-up, on each).
pub fn set_thread(index: usize, count: usize) {
    THREAD.with(|thread| thread.set((index, count.max(1))));
}

/// The share of a cap of `cap` that delivery thread `index` of `threads` gets.
pub fn share(cap: usize, threads: usize, index: usize) -> usize {
    let threads = threads.max(1);
    (cap / threads + usize::from(index % threads < cap % threads)).max(1)
}

impl Holder {
    pub fn new(host: HostKey) -> Holder {
        let id = NEXT_HOLDER.with(|next| {
            let id = next.get();
            next.set(id + 1);
            id
        });
        Holder { host, id }
    }

    fn with_gate<T>(&self, cap: usize, f: impl FnOnce(&mut Gate) -> T) -> T {
        GATES.with(|gates| {
            let mut gates = gates.borrow_mut();
            let gate = gates.entry(self.host.clone()).or_insert_with(|| {
                let (index, count) = THREAD.with(Cell::get);
                Gate::new(&self.host, share(cap, count, index))
            });
            f(gate)
        })
    }

    /// Permits this holder has.
    pub fn held(&self) -> usize {
        GATES.with(|gates| {
            gates
                .borrow()
                .get(&self.host)
                .and_then(|gate| gate.held.get(&self.id).copied())
                .unwrap_or(0)
        })
    }

    /// Takes up to `wanted` more permits (of a cap of `cap`); how many it got. Nothing while
    /// others wait: then, or when short, it joins the queue (once) and hears of its turn.
    pub fn acquire(&self, cap: usize, wanted: usize, waiter: Recipient<HostRoom>) -> usize {
        if wanted == 0 {
            return 0;
        }
        let id = self.id;
        self.with_gate(cap, |gate| {
            let free = gate.share.saturating_sub(gate.in_use);
            let granted = if gate.waiting.is_empty() { wanted.min(free) } else { 0 };
            gate.take(id, granted);
            if granted < wanted && !gate.waiting.iter().any(|(queued, _)| *queued == id) {
                gate.waiting.push_back((id, waiter));
                gate.figures.waiting.fetch_add(1, Ordering::Relaxed);
            }
            granted
        })
    }

    /// Gives back `count` permits: each goes to the next in the queue, or back to the pool.
    pub fn release(&self, count: usize) {
        let id = self.id;
        GATES.with(|gates| {
            if let Some(gate) = gates.borrow_mut().get_mut(&self.host) {
                gate.give_back(id, count);
            }
        });
    }

    /// Gives back everything and leaves the queue (the actor stops, or its host changed).
    pub fn leave(&self) {
        let id = self.id;
        GATES.with(|gates| {
            if let Some(gate) = gates.borrow_mut().get_mut(&self.host) {
                let held = gate.held.get(&id).copied().unwrap_or(0);
                let before = gate.waiting.len();
                gate.waiting.retain(|(queued, _)| *queued != id);
                let left = before - gate.waiting.len();
                gate.figures.waiting.fetch_sub(left as i64, Ordering::Relaxed);
                gate.give_back(id, held);
            }
        });
    }
}

impl Gate {
    fn new(host: &HostKey, share: usize) -> Gate {
        let figures = HOSTS.entry(host.clone()).or_default().clone();
        figures.cap.fetch_add(share as i64, Ordering::Relaxed);
        Gate {
            share,
            held: HashMap::new(),
            in_use: 0,
            waiting: VecDeque::new(),
            figures,
        }
    }

    fn take(&mut self, id: u64, count: usize) {
        if count > 0 {
            *self.held.entry(id).or_insert(0) += count;
            self.in_use += count;
            self.figures.in_use.fetch_add(count as i64, Ordering::Relaxed);
        }
    }

    fn give_back(&mut self, id: u64, count: usize) {
        let held = self.held.entry(id).or_insert(0);
        let count = count.min(*held);
        *held -= count;
        if *held == 0 {
            self.held.remove(&id);
        }
        self.in_use -= count;
        self.figures.in_use.fetch_sub(count as i64, Ordering::Relaxed);
        for _ in 0..count {
            // Handed to the first waiter that can still hear it (a stopped actor cannot).
            while let Some((next, waiter)) = self.waiting.pop_front() {
                self.figures.waiting.fetch_sub(1, Ordering::Relaxed);
                if waiter.try_send(HostRoom).is_ok() {
                    self.take(next, 1);
                    break;
                }
            }
        }
    }
}

/// Every host's figures, busiest first (for `/metrics`).
pub fn all_figures() -> Vec<crate::metrics::HostLine> {
    let mut lines: Vec<crate::metrics::HostLine> = HOSTS
        .iter()
        .map(|entry| {
            let f = entry.value();
            (
                entry.key().to_string(),
                f.in_use.load(Ordering::Relaxed),
                f.cap.load(Ordering::Relaxed),
                f.waiting.load(Ordering::Relaxed),
            )
        })
        .collect();
    lines.sort_by(|a, b| (b.1, b.3).cmp(&(a.1, a.3)).then_with(|| a.0.cmp(&b.0)));
    lines
}

/// A host's figures as `/health` and the dashboard show them: (in use, cap, actors waiting).
pub fn figures(host: &HostKey) -> Option<(i64, i64, i64)> {
    HOSTS.get(host).map(|f| {
        (
            f.in_use.load(Ordering::Relaxed),
            f.cap.load(Ordering::Relaxed),
            f.waiting.load(Ordering::Relaxed),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_shared_between_threads_each_getting_one() {
        assert_eq!((0..2).map(|i| share(64, 2, i)).collect::<Vec<_>>(), [32, 32]);
        assert_eq!((0..3).map(|i| share(64, 3, i)).collect::<Vec<_>>(), [22, 21, 21]);
        assert_eq!((0..4).map(|i| share(2, 4, i)).collect::<Vec<_>>(), [1, 1, 1, 1]);
    }

    #[test]
    fn a_host_is_its_scheme_name_and_port() {
        let key = |text: &str| host_key(&url::Url::parse(text).unwrap());
        assert_eq!(
            &*key("https://hooks.example.com/a?x=1"),
            "https://hooks.example.com:443"
        );
        assert_eq!(
            key("https://hooks.example.com:443/b"),
            key("https://hooks.example.com/c")
        );
        assert_ne!(key("http://hooks.example.com/a"), key("https://hooks.example.com/a"));
        assert_eq!(&*key("http://127.0.0.1:9000/t/1"), "http://127.0.0.1:9000");
    }
}
