//! Idle webhooks: no delivery actor anywhere, not paused, not disabled. They follow the active
//! ones in the table, oldest first, and are read only when a page shows them:
//!
//! * unfiltered, a page of them is a range of the webhook index `P:webhooks` (creation order)
//!   with the active, paused and disabled webhooks skipped; their positions in the index
//!   ([`Snapshot::ranks`]) say where the page starts, so page 2,000 costs what page 1 costs;
//! * filtered by user, the user's index set is read (one `ZRANGE`);
//! * filtered by text, every webhook's URL has to be looked at: the [`TextIndex`] reads them
//!   all once (one pipeline per 1,000) and serves every search from memory until webhooks
//!   change, reloading at most every [`RELOAD_AT_MOST`] (active webhooks, whose URLs are on the
//!   boards, are always current), and is dropped after [`DROP_UNUSED`] without a search.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::snapshot::Snapshot;
use crate::domain::{UserId, WebhookId};
use crate::store::{Store, StoreResult};

/// A loaded text index is reloaded after a webhook change at most this often.
const RELOAD_AT_MOST: Duration = Duration::from_secs(5);
/// How long the version counter is trusted between two looks.
const RECHECK: Duration = Duration::from_secs(1);
/// A text index no search used for this long is dropped (it holds every URL).
const DROP_UNUSED: Duration = Duration::from_secs(300);

/// Idle webhooks matching a filter: how many, and the ids of one page of them.
pub struct IdlePage {
    pub total: u64,
    pub ids: Vec<WebhookId>,
}

/// The page of idle webhooks at `offset` (among those matching `user` and `text`, a lower-case
/// substring of the URL, id or user).
pub async fn page(
    store: &Store,
    snapshot: &Snapshot,
    index: &TextIndex,
    user: Option<&UserId>,
    text: Option<&str>,
    (offset, limit): (u64, u64),
) -> StoreResult<IdlePage> {
    let idle = |id: &WebhookId| !snapshot.special.contains(id);
    let matching: Vec<WebhookId> = match (user, text) {
        (None, None) => return unfiltered(store, snapshot, offset, limit).await,
        (Some(user), None) => store
            .overview()
            .ids_of_user(user)
            .await?
            .into_iter()
            .filter(idle)
            .collect(),
        (user, Some(text)) => {
            let user = user.map(UserId::to_string);
            index
                .entries(store)
                .await?
                .iter()
                .filter(|entry| user.is_none() || entry.user == user)
                .filter(|entry| entry.haystack.contains(text) && idle(&entry.id))
                .map(|entry| entry.id)
                .collect()
        }
    };
    Ok(IdlePage {
        total: matching.len() as u64,
        ids: matching
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect(),
    })
}

/// A page of the whole index without the special webhooks, found by their positions.
async fn unfiltered(store: &Store, snapshot: &Snapshot, offset: u64, limit: u64) -> StoreResult<IdlePage> {
    let total = snapshot.summary.webhooks.saturating_sub(snapshot.ranks.len() as u64);
    let mut ids = Vec::new();
    if offset >= total {
        return Ok(IdlePage { total, ids });
    }
    let mut position = start_position(&snapshot.ranks, offset);
    let overview = store.overview();
    while (ids.len() as u64) < limit {
        let want = limit - ids.len() as u64;
        let batch = overview.ids_at(position, want + 16).await?;
        let fetched = batch.len() as u64;
        ids.extend(
            batch
                .into_iter()
                .filter(|id| !snapshot.special.contains(id))
                .take(want as usize),
        );
        if fetched < want + 16 {
            break;
        }
        position += fetched;
    }
    Ok(IdlePage { total, ids })
}

/// The position in the index of the `offset`-th (from 0) webhook that is not at one of the
/// `taken` positions (ascending).
fn start_position(taken: &[u64], offset: u64) -> u64 {
    let mut position = offset;
    for &rank in taken {
        if rank <= position {
            position += 1;
        } else {
            break;
        }
    }
    position
}

/// One webhook as the text search sees it.
pub struct TextEntry {
    id: WebhookId,
    user: Option<String>,
    /// URL (redacted), id and user, in lower case.
    haystack: String,
}

struct Loaded {
    entries: Arc<Vec<TextEntry>>,
    /// The webhooks version it was loaded at.
    version: Option<u64>,
    loaded: Instant,
    checked: Instant,
    used: Instant,
}

/// Every webhook's URL, user and id, for text searches over idle webhooks.
#[derive(Default)]
pub struct TextIndex {
    loaded: tokio::sync::Mutex<Option<Loaded>>,
}

impl TextIndex {
    async fn entries(&self, store: &Store) -> StoreResult<Arc<Vec<TextEntry>>> {
        let mut loaded = self.loaded.lock().await;
        let now = Instant::now();
        if let Some(index) = loaded.as_mut() {
            index.used = now;
            if index.checked.elapsed() < RECHECK {
                return Ok(index.entries.clone());
            }
            let version = store.webhooks().version().await?;
            if version == index.version || index.loaded.elapsed() < RELOAD_AT_MOST {
                index.checked = now;
                return Ok(index.entries.clone());
            }
        }
        let version = store.webhooks().version().await?;
        let entries: Vec<TextEntry> = store
            .overview()
            .all_lines()
            .await?
            .into_iter()
            .map(|line| {
                let user = line.user.map(|user| user.to_string());
                let haystack = format!(
                    "{}\n{}\n{}",
                    line.url.redacted(),
                    line.id,
                    user.as_deref().unwrap_or_default()
                )
                .to_lowercase();
                TextEntry {
                    id: line.id,
                    user,
                    haystack,
                }
            })
            .collect();
        let entries = Arc::new(entries);
        *loaded = Some(Loaded {
            entries: entries.clone(),
            version,
            loaded: now,
            checked: now,
            used: now,
        });
        Ok(entries)
    }

    /// Drops the index when no search used it for a while.
    pub fn drop_if_unused(&self) {
        if let Ok(mut loaded) = self.loaded.try_lock() {
            if loaded.as_ref().is_some_and(|index| index.used.elapsed() > DROP_UNUSED) {
                *loaded = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::start_position;

    #[test]
    fn an_offset_skips_the_taken_positions_before_it() {
        // Positions 0..10; 1, 2 and 5 are taken: the free ones are 0, 3, 4, 6, 7, 8, 9.
        let taken = [1, 2, 5];
        let free: Vec<u64> = (0..7).map(|offset| start_position(&taken, offset)).collect();
        assert_eq!(free, [0, 3, 4, 6, 7, 8, 9]);
        assert_eq!(start_position(&[], 4), 4);
        assert_eq!(start_position(&[0, 1, 2], 0), 3);
    }
}
