//! Webhook change notifications from every instance, over Redis pub/sub.
//!
//! Each change to a webhook publishes `<id>:<version>` on `P:changes` (inside the same script
//! that makes the change); a replay publishes `<id>`, a "retry now" `<id>:retry`, an instance
//! that routed events to webhooks another owns `work:<id>,…`, and membership changes
//! `instances` ([`Notice`]). This task subscribes and forwards each to the supervisor. Pub/sub drops messages while disconnected, so after every
//! (re)subscription the supervisor gets a forced [`Resync`]; the periodic resync covers the rest.

use std::time::Duration;

use actix::Addr;
use futures_util::StreamExt;

use super::supervisor::{MembersMoved, Resync, RetryWebhook, Supervisor, WebhookChanged, WorkQueued};
use crate::store::{Notice, Store};

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
                            match Notice::parse(message.get_payload_bytes()) {
                                Some(Notice::Record(id, version)) => supervisor.do_send(WebhookChanged {
                                    id,
                                    version: Some(version),
                                }),
                                Some(Notice::Queue(id)) => supervisor.do_send(WebhookChanged { id, version: None }),
                                Some(Notice::RetryNow(id)) => supervisor.do_send(RetryWebhook(id)),
                                Some(Notice::Work(ids)) => supervisor.do_send(WorkQueued(ids)),
                                Some(Notice::Instances) => supervisor.do_send(MembersMoved),
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
