//! Which webhooks this instance delivers.
//!
//! Today one delivering instance per prefix owns every webhook. This is the one seam to change
//! when several delivering instances share a prefix: ownership leases would decide here, and
//! the supervisor starts and stops actors by what this answers.

use crate::domain::WebhookId;

#[derive(Debug, Clone, Copy, Default)]
pub enum Ownership {
    /// This instance delivers every webhook.
    #[default]
    All,
}

impl Ownership {
    pub fn owns(&self, _webhook: &WebhookId) -> bool {
        match self {
            Ownership::All => true,
        }
    }
}
