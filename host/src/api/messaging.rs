//! Messaging routes: send, inbox with read/unread, and a live stream of new
//! messages over server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use yiwang_registry::TopicPattern;

use crate::messaging::{Message, Recipient};
use crate::api::auth::AuthUser;
use crate::api::error::ApiQuery;
use crate::api::error::ErrorBody;
use crate::api::openapi::{BadRequest, Unauthorized};
use crate::api::{ApiError, AppState, JsonBody};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(inbox, send_message))
        .routes(routes!(message_stream))
        .routes(routes!(mark_read))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct InboxQuery {
    /// Only messages not yet read.
    #[serde(default)]
    unread: bool,
    /// At most this many (1-500).
    #[serde(default = "default_limit")]
    #[param(default = 50)]
    limit: i64,
}

fn default_limit() -> i64 {
    50
}

/// The caller's inbox.
///
/// Messages to the caller, their department, their org unit, or a role they
/// hold there; newest first, each with `read`.
#[utoipa::path(
    get,
    path = "/api/messages",
    tag = "messaging",
    params(InboxQuery),
    responses(
        (status = 200, description = "The messages, newest first", body = Vec<Message>),
        (status = 400, description = "A malformed query string", body = ErrorBody),
        (status = 401, response = Unauthorized),
    ),
    security(("bearer" = [])),
)]
async fn inbox(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> Result<Json<Vec<Message>>, ApiError> {
    Ok(Json(state.services.messaging.inbox(&user.principal, q.unread, q.limit).await?))
}

/// Mark a message read.
#[utoipa::path(
    post,
    path = "/api/messages/{id}/read",
    tag = "messaging",
    params(("id" = String, Path, description = "The message id")),
    responses(
        (status = 204, description = "Marked read"),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No such message reaches the caller", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn mark_read(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    state.services.messaging.mark_read(&user.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A message to send.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SendMessage {
    to: Recipient,
    /// 1-200 characters.
    subject: String,
    /// At most 64 KiB.
    body: String,
}

/// The id of a new message.
#[derive(Serialize, ToSchema)]
struct Sent {
    id: String,
}

/// Send a message.
///
/// Staff accounts only. `to` is a user, a role in an org unit, a department or
/// an org unit.
#[utoipa::path(
    post,
    path = "/api/messages",
    tag = "messaging",
    request_body = SendMessage,
    responses(
        (status = 201, description = "Sent", body = Sent),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, description = "Only staff accounts send messages", body = ErrorBody),
        (status = 404, description = "No such recipient", body = ErrorBody),
        (status = 422, description = "The subject or body is empty or too long", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn send_message(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(body): JsonBody<SendMessage>,
) -> Result<(StatusCode, Json<Sent>), ApiError> {
    if !user.principal.is_staff() {
        return Err(ApiError::Forbidden("only staff accounts send messages".into()));
    }
    let sender = format!("user:{}", user.principal.id);
    let s = &state.services;
    let id = s.messaging.send(&s.identity, &sender, &body.to, &body.subject, &body.body).await?;
    Ok((StatusCode::CREATED, Json(Sent { id })))
}

/// The bus subscriber name of every live inbox stream.
pub const SSE_SUBSCRIBER: &str = "sse:inbox";

/// Live stream of new messages.
///
/// New messages for the caller as they are sent: `event: message`, data = the
/// announcement (`message`, `to`, `sender`, `subject`); fetch the body from the inbox.
#[utoipa::path(
    get,
    path = "/api/messages/stream",
    tag = "messaging",
    responses(
        (
            status = 200,
            description = "Server-sent events, one `event: message` per new message that reaches the caller; \
                its `id` is the event id and its `data` a JSON object `{\"message\", \"to\", \"sender\", \"subject\"}` \
                (`message` is the message id; fetch the body from the inbox). A comment line keeps the stream \
                alive every 15 seconds.",
            body = String,
            content_type = "text/event-stream",
        ),
        (status = 401, response = Unauthorized),
    ),
    security(("bearer" = [])),
)]
async fn message_stream(
    State(state): State<AppState>,
    user: AuthUser,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let pattern = TopicPattern::parse("message.sent").expect("a valid pattern");
    // Named for what it is, not for whom: the bus's subscriber names are
    // exported in `/metrics`, which must not say who is online.
    let subscription = state.services.bus.subscribe(SSE_SUBSCRIBER, vec![pattern], 256);
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
