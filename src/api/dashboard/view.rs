//! `GET /dashboard/webhooks`: one page of the dashboard's table, filtered and worst first, with
//! the summary. The stream pushes the same [`View`] for its own filter.
//!
//! The page is cut from the shared [`super::snapshot::Snapshot`] (active, paused and disabled webhooks, sorted)
//! followed by idle webhooks ([`super::idle`]); only the rows on the page are read in full: their
//! stored health reports (rates and last success, aged to now; the last failure when the board
//! has none) and records, in one pipeline each. State, backlog, the last error while it matters
//! and the next retry or probe come from the boards, as fresh as each other. A page costs the same with 100 webhooks or 100,000.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::idle::{self, IdlePage};
use super::snapshot::Row;
use super::summary::Summary;
use crate::actors::delivery::{HealthReport, HealthState, LastFailure, LastSuccess, RecentRates};
use crate::api::errors::{ApiError, BodyErrors, CommonErrors};
use crate::api::input::Query;
use crate::api::ApiState;
use crate::clock::{iso8601, now_ms};
use crate::domain::{UserId, WebhookId};

const DEFAULT_ROWS: u64 = 50;
const MAX_ROWS: u64 = 200;
const MAX_PAGE: u64 = 1_000_000;
const MAX_TEXT: usize = 200;
const STATES: &str = "all, failing, retrying, healthy, paused, disabled or unknown";

/// Which rows, and which page of them.
#[derive(Debug, Clone)]
pub struct Filter {
    pub state: Option<HealthState>,
    pub user: Option<UserId>,
    /// Lower case.
    pub text: Option<String>,
    pub page: u64,
    pub limit: u64,
}

impl Filter {
    /// Reads `state`, `user`, `q`, `page` and `limit`; problems go to `query`'s errors.
    pub fn read(query: &mut Query) -> Filter {
        let state = query
            .parse("state", |text| match text {
                "" | "all" => Ok(None),
                "failing" => Ok(Some(HealthState::Failing)),
                "retrying" => Ok(Some(HealthState::Retrying)),
                "healthy" => Ok(Some(HealthState::Healthy)),
                "paused" => Ok(Some(HealthState::Paused)),
                "disabled" => Ok(Some(HealthState::Disabled)),
                "unknown" => Ok(Some(HealthState::Unknown)),
                _ => Err(format!("must be {STATES}")),
            })
            .flatten();
        let user = query
            .parse("user", |text| match text {
                "" => Ok(None),
                text => UserId::parse(text).map(Some),
            })
            .flatten();
        let text = query
            .parse("q", |text| match text.trim() {
                text if text.chars().count() > MAX_TEXT => Err(format!("must be at most {MAX_TEXT} characters")),
                "" => Ok(None),
                text => Ok(Some(text.to_lowercase())),
            })
            .flatten();
        Filter {
            state,
            user,
            text,
            page: query.integer("page", 1..=MAX_PAGE, 1),
            limit: query.integer("limit", 1..=MAX_ROWS, DEFAULT_ROWS),
        }
    }

    fn admits(&self, row: &Row) -> bool {
        self.state.is_none_or(|state| row.state == state)
            && self
                .user
                .as_ref()
                .is_none_or(|user| row.user.as_deref() == Some(user.as_str()))
            && self.text.as_deref().is_none_or(|text| row.contains(text))
    }
}

/// The filter and page of the dashboard's table (also the stream's).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ViewParams {
    /// Only webhooks in this state (`all` or absent: every state).
    #[param(pattern = "^(all|failing|retrying|healthy|paused|disabled|unknown)?$")]
    state: Option<String>,
    /// Only this user's webhooks.
    #[param(max_length = 128)]
    user: Option<String>,
    /// Text in the webhook's URL (as shown, redacted), id or user; case does not matter.
    #[param(max_length = 200)]
    q: Option<String>,
    /// 1–1,000,000, default 1.
    #[param(minimum = 1, maximum = 1000000)]
    page: Option<u32>,
    /// Rows per page, 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// A page of the table, with the summary.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct View {
    pub success: bool,
    pub summary: Summary,
    /// Webhooks matching the filter.
    pub total: u64,
    pub page: u64,
    /// Pages of `limit` rows (at least 1).
    pub pages: u64,
    pub limit: u64,
    /// Worst first: failing, retrying, then by backlog; idle webhooks last, oldest first.
    pub rows: Vec<ViewRow>,
    pub generated_at: String,
}

/// One webhook's row.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViewRow {
    pub id: String,
    pub state: HealthState,
    /// Query values and secret-looking path segments redacted (`***`).
    pub url: String,
    pub user: Option<String>,
    pub backlog: u64,
    pub in_flight: usize,
    /// Failed deliveries waiting for their retry.
    pub waiting: u64,
    pub consecutive_failures: u32,
    /// The last 5 minutes (see `/webhooks/{id}/health`).
    pub rates: RecentRates,
    pub last_success: Option<LastSuccess>,
    pub last_failure: Option<LastFailure>,
    pub next_retry_at: Option<String>,
    pub next_probe_at: Option<String>,
    pub disabled_reason: Option<String>,
    /// The instance running its delivery actor; null when it has none (idle, paused, disabled).
    pub instance: Option<String>,
}

/// Table rows with the summary, for the page and the stream.
#[utoipa::path(get, path = "/dashboard/webhooks", tag = "dashboard", params(ViewParams),
    responses((status = 200, body = View), BodyErrors, CommonErrors))]
pub async fn webhooks(
    state: web::Data<ApiState>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let mut query = Query::new(query.into_inner());
    let filter = Filter::read(&mut query);
    query.finish()?;
    Ok(HttpResponse::Ok().json(view(&state, &filter).await?))
}

/// The page `filter` asks for, as of now.
pub async fn view(state: &ApiState, filter: &Filter) -> Result<View, ApiError> {
    let dashboard = &state.dashboard;
    dashboard.text.drop_if_unused();
    let snapshot = dashboard.snapshots.get(&state.store).await?;
    let special: Vec<&Row> = snapshot.rows.iter().filter(|row| filter.admits(row)).collect();
    let offset = (filter.page - 1) * filter.limit;
    let shown: Vec<&Row> = special
        .iter()
        .skip(offset as usize)
        .take(filter.limit as usize)
        .copied()
        .collect();
    let idle = if filter.state.is_none_or(|state| state == snapshot.idle_state) {
        let window = (
            offset.saturating_sub(special.len() as u64),
            filter.limit - shown.len() as u64,
        );
        idle::page(
            &state.store,
            &snapshot,
            &dashboard.text,
            filter.user.as_ref(),
            filter.text.as_deref(),
            window,
        )
        .await?
    } else {
        IdlePage {
            total: 0,
            ids: Vec::new(),
        }
    };

    // The rows on the page, in full.
    let ids: Vec<WebhookId> = shown.iter().map(|row| row.id).chain(idle.ids.iter().copied()).collect();
    let overview = state.store.overview();
    let lines = overview.lines(&ids).await?;
    let reports = overview.reports(&ids).await?;
    let idle_backlogs = overview.backlogs(&idle.ids).await?;
    let now = now_ms();
    let mut rows = Vec::with_capacity(ids.len());
    let sources = shown.iter().map(|row| Some(*row)).chain(idle.ids.iter().map(|_| None));
    let mut idle_backlogs = idle_backlogs.into_iter();
    for ((source, line), report) in sources.zip(lines).zip(reports) {
        let backlog = if source.is_none() { idle_backlogs.next() } else { None };
        // A webhook deleted since the snapshot has no record any more.
        let Some(line) = line else { continue };
        let report = report
            .and_then(|json| serde_json::from_str::<HealthReport>(&json).ok())
            .map(|report| report.aged(now));
        let (last_success, last_failure, rates) = match report {
            Some(r) => (r.last_success, r.last_failure, r.rates),
            None => Default::default(),
        };
        let row = match source {
            Some(row) => ViewRow {
                id: row.id.to_string(),
                state: row.state,
                url: row.url.clone(),
                user: row.user.clone(),
                backlog: row.backlog,
                in_flight: row.in_flight,
                waiting: row.waiting,
                consecutive_failures: row.failures,
                rates,
                last_success,
                // The board's, as fresh as the state, while it matters; else the report's.
                last_failure: row.last_failure.clone().or(last_failure),
                next_retry_at: row.next_retry_at.map(|due| iso8601(due.max(now))),
                next_probe_at: row.next_probe_at.map(iso8601),
                disabled_reason: line.disabled_reason,
                instance: row.instance.clone(),
            },
            None => ViewRow {
                id: line.id.to_string(),
                state: snapshot.idle_state,
                url: line.url.redacted(),
                user: line.user.map(|user| user.to_string()),
                backlog: backlog.unwrap_or_default(),
                in_flight: 0,
                waiting: 0,
                consecutive_failures: 0,
                rates,
                last_success,
                last_failure,
                next_retry_at: None,
                next_probe_at: None,
                disabled_reason: None,
                instance: None,
            },
        };
        rows.push(row);
    }
    let total = special.len() as u64 + idle.total;
    Ok(View {
        success: true,
        summary: snapshot.summary.clone(),
        total,
        page: filter.page,
        pages: total.div_ceil(filter.limit).max(1),
        limit: filter.limit,
        rows,
        generated_at: iso8601(now),
    })
}
