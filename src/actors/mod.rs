//! The actors, and how events flow through them:
//!
//! ```text
//! Redis stream P:events
//!     │ XREADGROUP (batches)
//!     ▼
//! QueueReader ──RouteBatch──▶ Supervisor ── fan-out script: P:queue:<id> per match + XACK
//!                                 │
//!                                 ├─ Enqueued ──▶ DeliveryActor (webhook A) ──POST──▶ endpoint A
//!                                 └─ Enqueued ──▶ DeliveryActor (webhook B) ──POST──▶ endpoint B
//! ```
//!
//! The change feed (pub/sub) and the API tell the supervisor about webhook changes. With
//! `[bullmq] enabled`, the BullMQ source feeds the stream from WildDuck's BullMQ queue:
//!
//! ```text
//! BullMQ queue wd:bull:webhooks ──BullMqSource── XADD ──▶ P:events (then as above)
//! ```
//!
//! The board writer publishes what the running delivery actors look like, for the dashboard;
//! membership keeps the list of live instances, from which ownership is decided.

pub mod board;
pub mod bullmq_source;
pub mod change_feed;
pub mod delivery;
pub mod membership;
pub mod ownership;
pub mod queue_reader;
pub mod replayer;
pub mod status;
pub mod supervisor;
