//! One API call as a producer sees it: the status, its `Retry-After`, and the error message,
//! for the tests that hold every answer to "200, or 503 with `Retry-After`".

use std::time::Duration;

use serde_json::Value;

/// One API answer: the status, its `Retry-After`, and the error message if any.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The caller's number for the request (an event's `n`).
    pub n: u64,
    pub status: u16,
    pub retry_after: Option<String>,
    pub error: String,
}

/// Calls the service; status 0 when it did not answer at all.
pub async fn call(client: &awc::Client, method: &str, url: &str, body: Option<Value>, n: u64) -> Answer {
    let request = client.request(method.parse().expect("a method"), url);
    let sent = match body {
        Some(body) => request.send_json(&body).await,
        None => request.send().await,
    };
    let Ok(mut response) = sent else {
        return Answer {
            n,
            status: 0,
            retry_after: None,
            error: format!("{sent:?}"),
        };
    };
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body: Value = response.json().limit(1 << 20).await.unwrap_or(Value::Null);
    Answer {
        n,
        status: response.status().as_u16(),
        retry_after,
        error: body["error"].as_str().unwrap_or_default().to_string(),
    }
}
