//! Messaging routes: send, inbox with read/unread, and a live stream of new
//! messages over server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde::Deserialize;
use yiwang_registry::TopicPattern;

use super::{Message, Recipient};
use crate::api::auth::AuthUser;
use crate::api::{ApiError, AppState, JsonBody};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/messages", get(inbox).post(send))
        .route("/api/messages/stream", get(stream))
        .route("/api/messages/{id}/read", post(mark_read))
}

#[derive(Deserialize)]
struct InboxQuery {
    #[serde(default)]
    unread: bool,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    50
}

async fn inbox(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<InboxQuery>,
) -> Result<Json<Vec<Message>>, ApiError> {
    Ok(Json(state.services.messaging.inbox(&user.principal, q.unread, q.limit).await?))
}

async fn mark_read(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.services.messaging.mark_read(&user.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Send {
    to: Recipient,
    subject: String,
    body: String,
}

async fn send(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(body): JsonBody<Send>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    if user.principal.kind != "staff" {
        return Err(ApiError::Forbidden("only staff accounts send messages".into()));
    }
    let sender = format!("user:{}", user.principal.id);
    let s = &state.services;
    let id = s.messaging.send(&s.identity, &sender, &body.to, &body.subject, &body.body).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": id }))))
}

/// New messages for the caller as they are sent: `event: message`, data = the
/// announcement (`message`, `to`, `sender`, `subject`); fetch the body from the inbox.
async fn stream(State(state): State<AppState>, user: AuthUser) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let pattern = TopicPattern::parse("message.sent").expect("a valid pattern");
    let subscription = state.services.bus.subscribe(&format!("sse:{}", user.principal.id), vec![pattern], 256);
    let principal = user.principal;
    let stream = futures::stream::unfold((subscription, principal), |(mut sub, principal)| async move {
        loop {
            let event = sub.events.recv().await?;
            let Ok(payload) = serde_json::from_str::<serde_json::Value>(&event.payload) else { continue };
            let Ok(to) = serde_json::from_value::<Recipient>(payload["to"].clone()) else { continue };
            if to.reaches(&principal) {
                let sse = SseEvent::default().event("message").id(event.id.clone()).data(payload.to_string());
                return Some((Ok(sse), (sub, principal)));
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
