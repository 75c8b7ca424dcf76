//! Domain types that parse input at the edge.
//!
//! Every value that comes from outside (an API body, a stream entry, a Redis record) becomes one
//! of these types through a `parse` function that names the rule it broke. Code past the edge
//! takes these types, so an invalid webhook URL or type pattern cannot exist inside the service.

mod delivery_options;
mod event;
mod event_type;
mod instance_name;
pub mod js_number;
mod secret;
mod stream_id;
mod type_pattern;
mod user_id;
mod webhook;
mod webhook_fields;
mod webhook_id;
mod webhook_url;

pub use delivery_options::{DeliveryOptions, Ordering, RateLimit, MAX_RATE_LIMIT};
pub use event::{Event, EventError, PreparedEvent};
pub use event_type::{EventType, WILDDUCK_EVENT_TYPES};
pub use instance_name::InstanceName;
pub use secret::{Signer, WebhookSecret};
pub use stream_id::StreamId;
pub use type_pattern::TypePattern;
pub use user_id::is_object_id;
pub use user_id::UserId;
pub use webhook::{DeliveryId, PreviousSecret, Signers, UserlessEvents, Webhook};
pub use webhook_fields::{normalize_type, parse_types, parse_url, parse_user, parse_user_or_null, MAX_TYPES};
pub use webhook_id::WebhookId;
pub use webhook_url::WebhookUrl;
