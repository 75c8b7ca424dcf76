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
//! The change feed (pub/sub) and the API tell the supervisor about webhook changes. The board
//! writer publishes what the running delivery actors look like, for the dashboard.

pub mod board;
pub mod change_feed;
pub mod delivery;
pub mod ownership;
pub mod queue_reader;
pub mod supervisor;
