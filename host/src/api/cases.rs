//! Case routes: the one intake, categories, a case with its transitions, the
//! transitions themselves, and a reporter's public view by ticket.
//!
//! Who may do what:
//! - *report*: any signed-in account on the channel its account allows —
//!   `snapshot` for residents (and staff), `hotline` for dispatchers and
//!   handlers of the 12345 hotline, `patrol` for grid workers, `department`
//!   for department staff; `warning` and `cap-alert` come from plugins and CAP
//!   import, not from this route;
//! - *read a case*: staff whose scope covers the case's area;
//! - *move a case*: the roles each action names (see `lifecycle`), within
//!   their area, and for department work the department it is with; the
//!   reporter may check their own case;
//! - *follow a ticket*: anyone holding the ticket number, seeing progress only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::calendar::CalendarSpec;
use crate::cases::engine::{CaseView, Category, Channel, Intake, Move, NewReport, PublicProgress, Rating, Who};
use crate::evaluation::kpi::Evaluation;
use crate::cases::lifecycle::Stage;
use crate::api::ApiQuery;
use crate::api::auth::AuthUser;
use crate::api::error::ErrorBody;
use crate::api::openapi::{BadRequest, Forbidden, Unauthorized};
use crate::api::{ApiError, AppState, JsonBody};
use crate::audit::Entry;
use crate::identity::{Principal, Role};
use crate::messaging::Recipient;
use crate::error::ServiceError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit_report))
        .routes(routes!(list_categories))
        .routes(routes!(get_case))
        .routes(routes!(move_case))
        .routes(routes!(follow_ticket))
        .routes(routes!(rate_case))
        .routes(routes!(set_calendar))
        .routes(routes!(evaluation))
        .routes(routes!(manual_queue))
}

/// Take in a report.
///
/// Any channel but `warning` and `cap-alert`, as the caller's account allows.
/// The report and its case are on disk before the `201`; the caller's
/// resubmission with the same `idempotency_key` on the same channel answers
/// `200` with the original, and `409` when the body differs. A key is the
/// caller's own: another caller's same key is another report. An unknown
/// category answers `422` listing the known codes.
#[utoipa::path(
    post,
    path = "/api/reports",
    tag = "cases",
    request_body = NewReport,
    responses(
        (status = 201, description = "Taken in", body = Intake),
        (status = 200, description = "The caller's same submission as before", body = Intake),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, description = "The caller used this idempotency key before for another report", body = ErrorBody),
        (status = 422, description = "A field is invalid; the message names it", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn submit_report(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(report): JsonBody<NewReport>,
) -> Result<(StatusCode, Json<Intake>), ApiError> {
    const ACTION: &str = "case.report";
    let p = &user.principal;
    let staff = p.is_staff();
    let allowed = match report.channel {
        Channel::Snapshot => p.is_resident() || staff,
        Channel::Hotline => {
            staff
                && p.department.as_deref() == Some("hotline12345")
                && (p.has_role(Role::Dispatcher) || p.has_role(Role::Handler))
        }
        Channel::Patrol => staff && p.has_role(Role::GridWorker),
        Channel::Department => staff && p.department.is_some(),
        Channel::Warning | Channel::CapAlert | Channel::Open311 => false,
    };
    if !allowed {
        let why = format!("this account may not report on the `{}` channel", report.channel.name());
        return Err(user.deny(&state, ACTION, report.channel.name(), why).await);
    }
    // The intake audits the report in the transaction that stores it.
    let intake = state.services.cases.intake(&report, Some(&p.id)).await?;
    let status = if intake.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(intake)))
}

/// Case categories.
///
/// The known category codes: `01` + major + minor for 部件 (component)
/// problems, `02` + major + minor for 事件 (incidents), with the usual
/// responsible department.
#[utoipa::path(
    get,
    path = "/api/categories",
    tag = "cases",
    responses(
        (status = 200, description = "The categories, by code", body = Vec<Category>),
        (status = 401, response = Unauthorized),
    ),
    security(("bearer" = [])),
)]
async fn list_categories(State(state): State<AppState>, _user: AuthUser) -> Result<Json<Vec<Category>>, ApiError> {
    Ok(Json(state.services.cases.categories().await?))
}

/// One case.
///
/// With its transitions and what may be done next. Staff whose area covers the case.
#[utoipa::path(
    get,
    path = "/api/cases/{id}",
    tag = "cases",
    params(("id" = String, Path, description = "The case")),
    responses(
        (status = 200, description = "The case", body = CaseView),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such case", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn get_case(State(state): State<AppState>, user: AuthUser, Path(id): Path<String>) -> Result<Json<CaseView>, ApiError> {
    const ACTION: &str = "case.read";
    if !user.principal.is_staff() {
        return Err(user.deny(&state, ACTION, &id, "cases are open to staff accounts; reporters follow their ticket".into()).await);
    }
    let view = state.services.cases.view(&id).await?.ok_or_else(|| ApiError::NotFound(format!("no case `{id}`")))?;
    let scope = state.services.identity.scope(&user.principal).await?;
    if !scope.covers_case(view.area.as_deref()) {
        let why = format!("case `{id}` lies in org unit `{}`, outside {scope}", view.area.as_deref().unwrap_or("-"));
        return Err(user.deny(&state, ACTION, &id, why).await);
    }
    Ok(Json(for_reader(view, &user.principal)))
}

/// A case as `reader` may see it: a hotline caller's name and phone are kept
/// for the staff who call back (the 12345 hotline), blanked for everyone else.
pub(super) fn for_reader(mut view: CaseView, reader: &Principal) -> CaseView {
    if !reader.calls_back() {
        for r in &mut view.reports {
            r.caller_name = None;
            r.caller_phone = None;
        }
    }
    view
}

/// Move a case.
///
/// Take one lifecycle action: `accept`, `reject`, `register`, `void`,
/// `dispatch` (with `department`, with `suggestion` to accept a plugin's route
/// suggestion, or with neither to follow the routing rules), `start`, `transfer` (with `department`),
/// `return`, `dispose`, `send-to-check`, `pass-check`, `fail-check`, `close`,
/// `reopen`, `suspend`, `resume`, `request-extension`, `approve-extension`,
/// `deny-extension`, `supervise`, `urge`. An action the case's stage does not
/// allow answers `409`, listing those it does. Every transition is recorded
/// with who, when and why, and audited.
#[utoipa::path(
    post,
    path = "/api/cases/{id}/transitions",
    tag = "cases",
    params(("id" = String, Path, description = "The case")),
    request_body = Move,
    responses(
        (status = 200, description = "Moved; the case as it now stands", body = CaseView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such case", body = ErrorBody),
        (status = 409, description = "Not allowed from the current stage; the message lists what is", body = ErrorBody),
        (status = 422, description = "A missing reason or department", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn move_case(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    JsonBody(mv): JsonBody<Move>,
) -> Result<Json<CaseView>, ApiError> {
    let action = format!("case.{}", mv.action);
    let scope = state.services.identity.scope(&user.principal).await?;
    match state.services.cases.transition(&id, &mv, Who::Person { actor: &user.principal, scope: &scope }).await {
        Ok(view) => {
            if view.stage == Stage::Closed {
                notify_closure(&state, &view).await;
            }
            if mv.action == crate::cases::lifecycle::Action::CallIn
                && let Some(d) = &mv.department
            {
                let to = Recipient::Department { code: d.clone() };
                let body = format!("案件「{}」需要贵部门报到协同处置：{}", view.title, mv.reason);
                if let Err(e) = state.services.messaging.send(&state.services.identity, "host", &to, "吹哨报到", &body).await {
                    tracing::warn!(case = view.id, "could not notify the called-in department: {e}");
                }
            }
            // The engine audited the transition in the transaction that stored it.
            Ok(Json(for_reader(view, &user.principal)))
        }
        Err(ServiceError::Forbidden(why)) => Err(user.deny(&state, &action, &id, why).await),
        Err(e) => Err(e.into()),
    }
}

/// Follow a case by its ticket.
///
/// Progress only — the stage and when each was reached; no personal data.
/// The ticket of a case merged into another as a duplicate shows the
/// surviving case's progress, naming its ticket in `merged_into_ticket`.
/// Open to anyone holding the ticket number.
#[utoipa::path(
    get,
    path = "/api/tickets/{ticket}",
    tag = "cases",
    params(("ticket" = String, Path, description = "The ticket number, `YW` and 12 digits")),
    responses(
        (status = 200, description = "The progress", body = PublicProgress),
        (status = 404, description = "No such ticket", body = ErrorBody),
    ),
)]
async fn follow_ticket(State(state): State<AppState>, Path(ticket): Path<String>) -> Result<Json<PublicProgress>, ApiError> {
    state.services.cases.progress(&ticket).await?.ok_or_else(|| ApiError::NotFound(format!("no ticket `{ticket}`")))
        .map(Json)
}

/// Tell the reporter their case is closed and may be rated.
async fn notify_closure(state: &AppState, view: &CaseView) {
    let Ok(Some((_, reporter, _))) = state.services.cases.by_ticket(view.ticket.as_deref().unwrap_or("")).await else {
        return;
    };
    let services = &state.services;
    if !services.identity.user_exists(&reporter).await.unwrap_or(false) {
        return;
    }
    let ticket = view.ticket.clone().unwrap_or_default();
    let to = Recipient::User { id: reporter };
    let body = format!("您反映的问题（{}，编号 {ticket}）已办结，欢迎评价。", view.title);
    if let Err(e) = services.messaging.send(&services.identity, "host", &to, "案件已办结", &body).await {
        tracing::warn!(case = view.id, "could not notify the reporter of the closure: {e}");
    }
}

/// Rate a closed case.
///
/// By its reporter, or — for a hotline case, on the callback (回访) — by hotline
/// staff. An unsatisfied rating reopens the case (重办).
#[utoipa::path(
    post,
    path = "/api/tickets/{ticket}/rating",
    tag = "cases",
    params(("ticket" = String, Path, description = "The ticket number")),
    request_body = Rating,
    responses(
        (status = 200, description = "Recorded; the case as it now stands (reopened when unsatisfied)", body = PublicProgress),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such ticket", body = ErrorBody),
        (status = 409, description = "The case is not closed", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn rate_case(
    State(state): State<AppState>,
    user: AuthUser,
    Path(ticket): Path<String>,
    JsonBody(rating): JsonBody<Rating>,
) -> Result<Json<PublicProgress>, ApiError> {
    const ACTION: &str = "case.rate";
    let cases = &state.services.cases;
    let (case_id, reporter, channel) =
        cases.by_ticket(&ticket).await?.ok_or_else(|| ApiError::NotFound(format!("no ticket `{ticket}`")))?;
    let p = &user.principal;
    let hotline_callback = channel == "hotline" && p.calls_back();
    if reporter != p.id && !hotline_callback {
        return Err(user.deny(&state, ACTION, &case_id, "only the reporter (or the hotline, for a call) rates a case".into()).await);
    }
    let actor = format!("user:{}", p.id);
    // Audited by the engine: the rating, and the reopening an unsatisfied one causes.
    cases.rate(&case_id, &rating, &actor).await?;
    cases.progress(&ticket).await?.ok_or_else(|| ApiError::NotFound(format!("no ticket `{ticket}`"))).map(Json)
}

/// Set a jurisdiction's working calendar.
///
/// Working periods, weekends, public holidays and make-up workdays for the
/// cases within an org unit (the longest matching unit applies). Operators only.
#[utoipa::path(
    put,
    path = "/api/calendars/{org_unit}",
    tag = "cases",
    params(("org_unit" = String, Path, description = "The org unit whose jurisdiction it covers")),
    request_body = CalendarSpec,
    responses(
        (status = 204, description = "Stored"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such org unit", body = ErrorBody),
        (status = 422, description = "The calendar is invalid; the message names the field", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn set_calendar(
    State(state): State<AppState>,
    user: AuthUser,
    Path(org_unit): Path<String>,
    JsonBody(spec): JsonBody<CalendarSpec>,
) -> Result<StatusCode, ApiError> {
    user.require(&state, Role::Operator, "case.calendar.set").await?;
    state.services.cases.set_calendar(&org_unit, &spec).await?;
    let actor = format!("user:{}", user.principal.id);
    let entry = Entry { actor: &actor, action: "case.calendar.set", subject: &org_unit, outcome: "ok", detail: "" };
    state.services.audit.record(entry).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Period {
    /// Start, ms since the epoch (inclusive).
    from: i64,
    /// End, ms since the epoch (exclusive).
    to: i64,
    /// Only this department.
    department: Option<String>,
    /// Only this command level (`community`, `street`, `district`, `city`, `command-center`).
    level: Option<String>,
    /// `tables` (the default) computes from the case tables; `audit` from the
    /// audit log alone, which must give the same figures.
    source: Option<String>,
}

/// Evaluation (考核).
///
/// The KPIs of each department for `[from, to)` — 结案率, 按期结案率, 处置率,
/// 按期处置率, 返工率, 拖延率, 按时派遣率, 准确派遣率, 按时立案率, 准确立案率 —
/// with the counts per step they come from, and the hotline's 办结率, 及时办结率,
/// 催办率, 重办率, 满意率 — and the same per command level. Computed from the
/// case tables, or with `source=audit` from the hash-chained audit log alone.
/// Leaders, supervisors, dispatchers and operators.
#[utoipa::path(
    get,
    path = "/api/kpis",
    tag = "cases",
    params(Period),
    responses(
        (status = 200, description = "The evaluation", body = Evaluation),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, description = "`from` is not before `to`", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn evaluation(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<Period>,
) -> Result<Json<Evaluation>, ApiError> {
    let p = &user.principal;
    if !(p.is_staff() && [Role::Leader, Role::Supervisor, Role::Dispatcher, Role::Operator].iter().any(|r| p.has_role(*r))) {
        let why = "the evaluation is open to leaders, supervisors, dispatchers and operators".to_owned();
        return Err(user.deny(&state, "case.kpis", "kpis", why).await);
    }
    let evaluation = &state.services.evaluation;
    let mut e = match q.source.as_deref().unwrap_or("tables") {
        "tables" => evaluation.evaluate(q.from, q.to).await?,
        "audit" => evaluation.evaluate_from_audit(q.from, q.to).await?,
        other => return Err(ApiError::Unprocessable(format!("source: `{other}` is neither `tables` nor `audit`"))),
    };
    if let Some(d) = q.department.filter(|d| !d.is_empty()) {
        e.departments.retain(|k| k.department == d);
    }
    if let Some(l) = q.level.filter(|l| !l.is_empty()) {
        e.levels.retain(|k| k.level == l);
    }
    Ok(Json(e))
}

/// The manual queue.
///
/// Registered cases that no routing rule matches, oldest first: the command
/// centre dispatches them by hand, each shown with the routes plugins
/// suggested for it. Dispatchers, supervisors and leaders.
#[utoipa::path(
    get,
    path = "/api/queues/manual",
    tag = "cases",
    responses(
        (status = 200, description = "The cases", body = Vec<CaseView>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
    security(("bearer" = [])),
)]
async fn manual_queue(State(state): State<AppState>, user: AuthUser) -> Result<Json<Vec<CaseView>>, ApiError> {
    let p = &user.principal;
    if !(p.is_staff() && [Role::Dispatcher, Role::Supervisor, Role::Leader].iter().any(|r| p.has_role(*r))) {
        let why = "the manual queue is open to dispatchers, supervisors and leaders".to_owned();
        return Err(user.deny(&state, "case.queue", "manual", why).await);
    }
    let scope = state.services.identity.scope(p).await?;
    let mut cases = state.services.cases.manual_queue().await?;
    cases.retain(|c| scope.covers_case(c.area.as_deref()));
    Ok(Json(cases.into_iter().map(|c| for_reader(c, p)).collect()))
}
