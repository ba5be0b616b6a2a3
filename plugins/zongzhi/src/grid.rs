//! Grid events (网格事件) and the street's call-in (街道吹哨、部门报到).

use yiwang_sdk::cases::{self, CommandLevel, RouteSuggestion};
use yiwang_sdk::events::{CaseMoved, CaseOverdue, CaseReported, Payload};
use yiwang_sdk::prelude::*;

use crate::record::{self, CallIn, EventRecord};
use crate::settings::{Category, Settings, Signal};
use crate::tally;

/// Topic of a call-in announcement.
pub const CALL_IN_TOPIC: &str = "zongzhi.call-in";

/// The payload of `event` as the contract's type; `None` (logged) when it does not fit.
pub fn payload_of<P: Payload>(event: &Event) -> Option<P> {
    match event.payload::<P>() {
        Ok(p) => Some(p),
        Err(e) => {
            warn!("skipped event {} on `{}`: {}", event.id, event.topic, e.message());
            None
        }
    }
}

/// A text field's content, trimmed; `None` when it is blank.
fn present(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|t| !t.is_empty())
}

/// Keeps the first error of a run of host calls that go on after a failure.
#[derive(Default)]
pub struct FirstError(pub Option<Error>);

impl FirstError {
    /// Logs a failed call (`what`) and keeps the error if it is the first.
    pub fn note<T>(&mut self, what: &str, result: Result<T, Error>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                warn!("{what} failed: {e}");
                self.0.get_or_insert(e);
                None
            }
        }
    }

    /// `Err` with the first error, if any.
    pub fn finish(self) -> Result<(), Error> {
        self.0.map_or(Ok(()), Err)
    }
}

/// `case.reported`: a case of one of the plugin's categories gets its handling
/// note, a route suggestion and a notice to its community, and is remembered.
pub fn on_reported(s: &Settings, event: &Event) -> Result<(), Error> {
    let Some(p) = payload_of::<CaseReported>(event) else { return Ok(()) };
    let Some(case) = present(&p.case) else {
        warn!("skipped report event {}: no `case`", event.id);
        return Ok(());
    };
    let Some(code) = present(&p.category_code) else {
        warn!("skipped case {case}: no `category_code`");
        return Ok(());
    };
    let Some(category) = s.category(code) else {
        if !crate::settings::is_category_code(code) {
            warn!("skipped case {case}: category code `{code}` is not 6 digits");
        } else if s.in_family(code) {
            warn!("skipped case {case}: unknown 综治 category `{code}` (not in `categories`)");
        } else {
            debug!("case {case} of category {code} is not a 综治 matter");
        }
        return Ok(());
    };
    if let Some(known) = record::load(case)? {
        debug!(
            "case {case} is already remembered; the report event {} is a repeat",
            event.id
        );
        // In case the first time stopped between the record and its tally.
        return tally::keep(s.local, case, &known, event.time);
    }
    let own = event.source == identity::whoami().id;
    // The community: the grid's, or for an overdue-visit case this plugin opened
    // without a position, the resident's.
    let grid = p.area.as_deref().and_then(present);
    let place = match grid.and_then(record::community_of) {
        Some(place) => Some(place),
        None if own => visit_place(case)?,
        None => None,
    };
    let Some((community, street)) = place else {
        match grid {
            Some(g) => warn!("skipped case {case}: area `{g}` is not a 14-digit grid code"),
            None => warn!("skipped case {case}: it has no area (grid code)"),
        }
        return Ok(());
    };
    let mut errors = FirstError::default();
    let mut rec = EventRecord {
        kind: record::KIND_CASE.into(),
        case: Some(case.to_owned()),
        category: category.code.clone(),
        grid: grid.filter(|g| record::is_code(g, 14)).map(str::to_owned),
        community: community.clone(),
        street,
        week: s.local.week_of(event.time),
        time: event.time,
        status: record::OPEN.into(),
        escalated: false,
        channel: present(p.channel.name()).map(str::to_owned),
        updated: event.time,
        ..EventRecord::default()
    };
    // Remembered first: a case the plugin acts on is always one it can follow.
    record::store(case, &rec)?;
    errors.note(
        &format!("counting case {case} in its week"),
        tally::keep(s.local, case, &rec, event.time),
    );

    errors.note(
        &format!("the handling note of case {case}"),
        cases::add_note(case, &format!("【综治处置要求】{}：{}", category.name, category.note)),
    );
    let reason = record::clip(
        &format!(
            "综治网格事件（{}）：由 {} 在{}层级处置。处置要求：{}",
            category.name,
            category.department,
            level_name(category.level),
            category.note
        ),
        500,
    );
    let suggestion = RouteSuggestion::new(category.department.clone(), category.level, s.route_score, reason);
    match cases::suggest_route(case, &suggestion) {
        Ok(id) => {
            rec.suggestion = Some(id);
            rec.suggested_level = Some(category.level.name().into());
            errors.note(
                &format!("remembering the suggestion for case {case}"),
                record::store(case, &rec),
            );
        }
        Err(Error::Conflict(m)) => info!("no route suggested for case {case}: {m}"),
        Err(e) => {
            errors.note::<()>(&format!("the route suggestion for case {case}"), Err(e));
        }
    }
    // A case the plugin opened itself was announced when it was opened.
    if !own {
        let title = present(&p.title).unwrap_or(&category.name);
        let body = format!(
            "网格 {} 上报{}（案件 {case}）：{}。处置要求：{}",
            grid.unwrap_or("-"),
            category.name,
            record::clip(title, 60),
            category.note
        );
        notify(
            category,
            &community,
            &format!("【综治】{}待处置", category.name),
            &body,
            &mut errors,
        );
    }
    errors.finish()
}

/// The community and street of the overdue visit that opened `case`, from the
/// pointer the visit left (by key: no search of the records).
fn visit_place(case: &str) -> Result<Option<(String, String)>, Error> {
    Ok(record::load(&record::opened_key(case))?
        .filter(|r| r.kind == record::KIND_OPENED && record::is_code(&r.community, 12))
        .map(|r| (r.community, r.street)))
}

/// Sends `subject`/`body` to each role of `category` in `community`.
pub fn notify(category: &Category, community: &str, subject: &str, body: &str, errors: &mut FirstError) {
    for role in &category.notify {
        let to = Recipient::Role((community.to_owned(), role.clone()));
        errors.note(
            &format!("the message to role:{community}/{role}"),
            messaging::send(&to, subject, body),
        );
    }
}

fn level_name(level: CommandLevel) -> &'static str {
    match level {
        CommandLevel::Community => "社区",
        CommandLevel::Street => "街道",
        CommandLevel::District => "区级",
        CommandLevel::City => "市级",
    }
}

/// The level above `level` (an escalation), as the host moves it: none or
/// community → street → district → city.
fn level_above(level: Option<&str>) -> Option<&'static str> {
    match level {
        None | Some("community") => Some("street"),
        Some("street") => Some("district"),
        Some("district") | Some("city") => Some("city"),
        Some(_) => None,
    }
}

/// What the plugin reads of a case's move (`case.<action>`) or of its overdue
/// step (`case.overdue`): the text fields trimmed, a blank one none.
pub struct Move {
    pub case: String,
    pub department: Option<String>,
    pub level: Option<String>,
    pub suggestion: Option<String>,
    pub reason: Option<String>,
    /// The step that ran out, for `case.overdue`.
    pub step: Option<String>,
}

impl Move {
    /// The move `event` carries; `None` (logged) when its payload does not fit.
    fn of(event: &Event) -> Option<Move> {
        let text = |t: Option<&str>| t.and_then(present).map(str::to_owned);
        if CaseOverdue::carried_on(&event.topic) {
            let o = payload_of::<CaseOverdue>(event)?;
            return Some(Move {
                case: o.case,
                department: None,
                level: None,
                suggestion: None,
                reason: None,
                step: text(Some(&o.step)),
            });
        }
        let m = payload_of::<CaseMoved>(event)?;
        Some(Move {
            department: text(m.department.as_deref()),
            level: text(m.level.as_ref().map(|l| l.name())),
            suggestion: text(m.suggestion.as_deref()),
            reason: text(Some(&m.reason)),
            step: None,
            case: m.case,
        })
    }
}

/// `case.<action>` for a remembered case: keep the record up to date, and call a
/// district department in when the street signals it cannot resolve the case.
pub fn on_move(s: &Settings, event: &Event, action: &str) -> Result<(), Error> {
    let Some(p) = Move::of(event) else { return Ok(()) };
    let Some(case) = present(&p.case) else {
        warn!("skipped event {} on `{}`: no `case`", event.id, event.topic);
        return Ok(());
    };
    let Some(mut rec) = record::load(case)? else {
        debug!("case {case} is not a remembered 综治 case; `{action}` ignored");
        return Ok(());
    };
    if rec.kind != record::KIND_CASE {
        warn!(
            "skipped `{action}` of {case}: its record is a `{}`, not a case",
            rec.kind
        );
        return Ok(());
    }
    // A host that says the level in the event is believed over what the plugin inferred.
    let told_level = p.level.clone();
    let before = tally::Entry::of(&rec);
    rec.updated = event.time;
    match action {
        "dispatch" => {
            rec.department = p.department.clone();
            let accepted = p.suggestion.as_deref().is_some_and(|id| rec.suggestion.as_deref() == Some(id));
            rec.level = told_level.or(if accepted { rec.suggested_level.clone() } else { None });
            if rec.level.is_none() {
                debug!("case {case} was dispatched without the plugin's suggestion: its level is not known");
            }
        }
        "escalate" => rec.level = told_level.or_else(|| level_above(rec.level.as_deref()).map(str::to_owned)),
        "call-in" => {
            if !rec.escalated {
                rec.escalated = true;
                rec.call_in = Some(CallIn {
                    department: None,
                    signal: "manual".into(),
                    reason: record::clip(p.reason.as_deref().unwrap_or(""), 200),
                    at: event.time,
                    suggestion: None,
                });
            }
        }
        "close" => rec.status = record::CLOSED.into(),
        "reopen" => rec.status = record::OPEN.into(),
        "void" | "reject" | "merge" => rec.status = record::WITHDRAWN.into(),
        _ => {
            let Some(signal) = Signal::of_action(action) else {
                warn!(
                    "skipped event {} on `{}`: not a move the plugin follows",
                    event.id, event.topic
                );
                return Ok(());
            };
            if let Some(level) = told_level {
                rec.level = Some(level);
            }
            return on_signal(s, event, &p, case, rec, signal);
        }
    }
    record::store(case, &rec)?;
    if tally::Entry::of(&rec) == before {
        return Ok(());
    }
    tally::keep(s.local, case, &rec, event.time)
}

/// A signal that the street may not resolve the case: call a district department
/// in (once per case) when it is enabled, the case is handled at a call-in level,
/// and, for failed checks, often enough.
fn on_signal(
    s: &Settings,
    event: &Event,
    p: &Move,
    case: &str,
    mut rec: EventRecord,
    signal: Signal,
) -> Result<(), Error> {
    if signal == Signal::FailCheck {
        rec.fail_checks += 1;
    }
    let enabled = s.call_in_signals.contains(&signal);
    let at_level = rec
        .level
        .as_deref()
        .is_some_and(|l| s.call_in_levels.iter().any(|c| c.name() == l));
    let enough = signal != Signal::FailCheck || rec.fail_checks >= s.fail_checks_for_call_in;
    let fire = !rec.escalated && enabled && at_level && enough;
    if !fire {
        debug!(
            "no call-in for case {case} on `{}`: escalated {}, enabled {enabled}, level {:?}, failed checks {}",
            signal.name(),
            rec.escalated,
            rec.level,
            rec.fail_checks
        );
        return record::store(case, &rec);
    }
    let Some(category) = s.category(&rec.category) else {
        warn!(
            "no call-in for case {case}: its category `{}` is no longer configured",
            rec.category
        );
        return record::store(case, &rec);
    };
    let said = p.reason.as_deref().map(|r| record::clip(r, 150));
    let why = match signal {
        Signal::Return => format!(
            "街道将案件退回指挥中心{}",
            said.map(|r| format!("（{r}）")).unwrap_or_default()
        ),
        Signal::FailCheck => format!("核查 {} 次未通过，街道返工仍未解决", rec.fail_checks),
        Signal::Overdue => format!(
            "{}环节已超期，街道未能按期处置",
            p.step
                .as_deref()
                .map(|st| format!("{} ", record::clip(st, 30)))
                .unwrap_or_default()
        ),
        Signal::RequestExtension => {
            format!("街道申请延期{}", said.map(|r| format!("（{r}）")).unwrap_or_default())
        }
    };
    let reason = record::clip(
        &format!(
            "街道吹哨、部门报到：{}（{}），{why}。建议由区级部门 {} 报到处置。",
            category.name, rec.community, category.call_in
        ),
        500,
    );
    // Marked first: whatever fails below, a case is called in once.
    rec.escalated = true;
    rec.call_in = Some(CallIn {
        department: Some(category.call_in.clone()),
        signal: signal.name().into(),
        reason: reason.clone(),
        at: event.time,
        suggestion: None,
    });
    record::store(case, &rec)?;

    let mut errors = FirstError::default();
    errors.note(
        &format!("counting the call-in of case {case} in its week"),
        tally::keep(s.local, case, &rec, event.time),
    );
    let suggestion = RouteSuggestion::new(
        category.call_in.clone(),
        CommandLevel::District,
        s.call_in_score,
        reason.clone(),
    );
    let id = match cases::suggest_route(case, &suggestion) {
        Ok(id) => Some(id),
        Err(Error::Conflict(m)) => {
            warn!("call-in of case {case}: the route was not suggested, one is still pending: {m}");
            None
        }
        Err(e) => errors.note::<String>(&format!("the call-in route suggestion for case {case}"), Err(e)),
    };
    if let Some(id) = &id {
        rec.suggestion = Some(id.clone());
        rec.suggested_level = Some(CommandLevel::District.name().into());
        if let Some(c) = rec.call_in.as_mut() {
            c.suggestion = Some(id.clone());
        }
        errors.note(
            &format!("remembering the call-in suggestion of case {case}"),
            record::store(case, &rec),
        );
    }
    errors.note(
        &format!("the call-in note of case {case}"),
        cases::add_note(case, &format!("【街道吹哨】{reason}")),
    );
    let announcement = json!({
        "case": case,
        "reason": reason,
        "department": category.call_in,
        "level": CommandLevel::District.name(),
        "signal": signal.name(),
        "category": category.code,
        "community": rec.community,
        "street": rec.street,
        "suggestion": id,
    });
    errors.note(
        &format!("announcing the call-in of case {case}"),
        bus::publish(CALL_IN_TOPIC, &announcement, None),
    );
    info!(
        "case {case} called in {} at district level on `{}`",
        category.call_in,
        signal.name()
    );
    errors.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalation_follows_the_host() {
        assert_eq!(level_above(None), Some("street"));
        assert_eq!(level_above(Some("community")), Some("street"));
        assert_eq!(level_above(Some("street")), Some("district"));
        assert_eq!(level_above(Some("district")), Some("city"));
        assert_eq!(level_above(Some("province")), None);
    }
}
