//! Webhook change notifications from every instance, over Redis pub/sub.
//!
//! Each change to a webhook publishes `<id>:<version>` on `P:changes` (inside the same script
//! that makes the change). This task subscribes and forwards each to the supervisor as a
//! [`WebhookChanged`]. Pub/sub drops messages while disconnected, so after every
//! (re)subscription the supervisor gets a forced [`Resync`]; the periodic resync covers the rest.

use std::time::Duration;

use actix::Addr;
use futures_util::StreamExt;

use super::supervisor::{Resync, Supervisor, WebhookChanged};
use crate::domain::WebhookId;
use crate::store::Store;

const RECONNECT_MIN: Duration = Duration::from_millis(200);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// Runs until the supervisor stops.
pub fn start(store: Store, supervisor: Addr<Supervisor>) {
    actix_rt::spawn(async move {
        let channel = store.keys().changes_channel();
        let mut pause = RECONNECT_MIN;
        while supervisor.connected() {
            match store.pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                    Ok(()) => {
                        pause = RECONNECT_MIN;
                        supervisor.do_send(Resync { force: true });
                        let mut messages = pubsub.on_message();
                        while let Some(message) = messages.next().await {
                            if !supervisor.connected() {
                                return;
                            }
                            match parse(message.get_payload_bytes()) {
                                Some((id, version)) => supervisor.do_send(WebhookChanged { id, version }),
                                None => tracing::debug!("ignoring a malformed change notification"),
                            }
                        }
                        tracing::warn!("lost the webhook change subscription; reconnecting");
                    }
                    Err(error) => tracing::warn!(%error, "subscribing to webhook changes failed"),
                },
                Err(error) => tracing::debug!(%error, "connecting for webhook changes failed"),
            }
            actix_rt::time::sleep(pause).await;
            pause = (pause * 2).min(RECONNECT_MAX);
        }
    });
}

/// `<id>:<version>`, or a bare `<id>` (a queue change without a new version).
fn parse(payload: &[u8]) -> Option<(WebhookId, Option<u64>)> {
    let text = std::str::from_utf8(payload).ok()?;
    match text.split_once(':') {
        Some((id, version)) => Some((WebhookId::parse(id)?, Some(version.parse().ok()?))),
        None => Some((WebhookId::parse(text)?, None)),
    }
}
