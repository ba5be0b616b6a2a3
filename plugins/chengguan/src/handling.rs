//! Case handling on `case.reported`: a route suggestion, a note with the procedure,
//! and a message to the patrol team of the case's street (see the crate docs).

use yiwang_sdk::cases::{CommandLevel, RouteSuggestion};
use yiwang_sdk::events::CaseReported;
use yiwang_sdk::prelude::*;

use crate::calendar::local_hour;
use crate::{category_name, clip, config_list, config_text, hotspot};

/// The role the patrol team (城管中队) holds in its street, and so the role
/// that receives the plugin's messages (its grant is `role:*/handler`).
pub const PATROL_ROLE: &str = "handler";

/// The four case types the plugin handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Vending,
    Construction,
    Garbage,
    Manhole,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Vending,
        Kind::Construction,
        Kind::Garbage,
        Kind::Manhole,
    ];

    /// The prefix of the type's keys in `[config]`.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Vending => "vending",
            Kind::Construction => "construction",
            Kind::Garbage => "garbage",
            Kind::Manhole => "manhole",
        }
    }

    /// The type's name in notes and messages.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Vending => "街面秩序",
            Kind::Construction => "违法建设",
            Kind::Garbage => "市容环境卫生",
            Kind::Manhole => "井盖安全",
        }
    }
}

/// One case type's row of `[config]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseType {
    pub kind: Kind,
    pub codes: Vec<String>,
    pub level: CommandLevel,
    pub note: String,
    pub deadline: String,
}

/// The case-handling parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseParams {
    pub types: Vec<CaseType>,
    pub construction_repeat_level: CommandLevel,
    pub construction_repeat_count: u32,
    pub manhole_urgent_deadline: String,
    pub night_start_hour: u32,
    pub night_end_hour: u32,
    pub main_road_keywords: Vec<String>,
    pub route_score: f64,
    pub city_duty_unit: String,
}

impl CaseParams {
    /// Read and check the parameters from the plugin's config.
    pub fn from_config() -> Result<CaseParams, Error> {
        let mut types = Vec::with_capacity(Kind::ALL.len());
        for kind in Kind::ALL {
            let k = kind.key();
            types.push(CaseType {
                kind,
                codes: config_list(&format!("{k}-codes"))?,
                level: config::get_parsed(&format!("{k}-level"))?,
                note: config_text(&format!("{k}-note"))?,
                deadline: config_text(&format!("{k}-deadline"))?,
            });
        }
        let p = CaseParams {
            types,
            construction_repeat_level: config::get_parsed("construction-repeat-level")?,
            construction_repeat_count: config::get_parsed("construction-repeat-count")?,
            manhole_urgent_deadline: config_text("manhole-urgent-deadline")?,
            night_start_hour: config::get_parsed("manhole-night-start-hour")?,
            night_end_hour: config::get_parsed("manhole-night-end-hour")?,
            main_road_keywords: config_list("manhole-main-road-keywords")?,
            route_score: config::get_parsed("route-score")?,
            city_duty_unit: config_text("city-duty-unit")?,
        };
        p.check()?;
        Ok(p)
    }

    pub fn check(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Invalid(format!("config: {m}")));
        let mut seen: Vec<&str> = Vec::new();
        for t in &self.types {
            if t.codes.is_empty() {
                return bad(format!("{}-codes names no category", t.kind.key()));
            }
            for code in &t.codes {
                if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
                    return bad(format!(
                        "{}-codes: `{code}` is not a 6-digit category code",
                        t.kind.key()
                    ));
                }
                if seen.contains(&code.as_str()) {
                    return bad(format!("category `{code}` is in two case types"));
                }
                seen.push(code);
            }
        }
        if self.construction_repeat_count == 0 {
            return bad("construction-repeat-count must be at least 1".into());
        }
        if self.night_start_hour > 23 || self.night_end_hour > 23 {
            return bad(
                "manhole-night-start-hour and manhole-night-end-hour must be 0..=23".into(),
            );
        }
        if !(self.route_score.is_finite() && (0.0..=1.0).contains(&self.route_score)) {
            return bad("route-score must be between 0 and 1".into());
        }
        if !self.city_duty_unit.bytes().all(|b| b.is_ascii_digit()) {
            return bad("city-duty-unit must be an org unit code (digits)".into());
        }
        Ok(())
    }

    /// The case type of a category code, if the plugin handles it.
    pub fn case_type(&self, code: &str) -> Option<&CaseType> {
        self.types
            .iter()
            .find(|t| t.codes.iter().any(|c| c == code))
    }

    /// Whether the local hour of `time` is at night: from the start hour up to
    /// (not including) the end hour, across midnight when start > end.
    pub fn is_night(&self, time: i64) -> bool {
        let h = local_hour(time);
        let (s, e) = (self.night_start_hour, self.night_end_hour);
        if s <= e {
            s <= h && h < e
        } else {
            h >= s || h < e
        }
    }
}

/// A `case.reported` payload with its grid checked. It reads as the payload
/// itself (`report.case`, `report.category_code`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The payload, as the host published it.
    pub reported: CaseReported,
    /// The 14-digit grid code, when the payload names a valid one.
    pub grid: Option<String>,
    /// Why there is no grid, when there is none: for the note.
    pub no_grid: Option<String>,
}

impl std::ops::Deref for Report {
    type Target = CaseReported;

    fn deref(&self) -> &CaseReported {
        &self.reported
    }
}

/// A text field's content, trimmed; `None` when it is blank.
pub fn present(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|t| !t.is_empty())
}

/// Whether `code` is a 14-digit grid code.
pub fn is_grid_code(code: &str) -> bool {
    code.len() == 14 && code.bytes().all(|b| b.is_ascii_digit())
}

/// Reads a `case.reported` payload; `Err` says why the event is skipped.
pub fn parse_report(event: &Event) -> Result<Report, String> {
    let reported: CaseReported = event.payload().map_err(|e| e.message().to_owned())?;
    if present(&reported.case).is_none() {
        return Err("the payload has no `case` id".into());
    }
    if present(&reported.category_code).is_none() {
        return Err("the payload has no `category_code`".into());
    }
    let (grid, no_grid) = match reported.area.as_deref() {
        None => (None, Some("上报未定位或位置不在任何网格内".to_owned())),
        Some(code) if is_grid_code(code) => (Some(code.to_owned()), None),
        Some(other) => {
            // Shown as JSON (quoted), as the payload carried it.
            let shown = clip(&yiwang_sdk::serde_json::Value::from(other).to_string(), 40);
            warn!(
                "case {}: `area` {shown} is not a 14-digit grid code; handled as a case without a grid",
                reported.case
            );
            (None, Some(format!("网格编码 {shown} 无效")))
        }
    };
    Ok(Report { reported, grid, no_grid })
}

/// The Chinese name of a command level.
pub fn level_name(level: CommandLevel) -> &'static str {
    match level {
        CommandLevel::Community => "社区",
        CommandLevel::Street => "街道",
        CommandLevel::District => "区",
        CommandLevel::City => "市",
    }
}

/// What the plugin does for one case: the suggestion, the note, the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub suggestion: RouteSuggestion,
    pub note: String,
    /// (org unit, role) of the message.
    pub to: (String, String),
    pub subject: String,
    pub body: String,
    pub urgent: bool,
}

/// Plans the handling of `report` of type `ty`, reported at `time`.
/// `same_type_this_week` is the grid's count of the type's codes in the report's
/// ISO week, this report included, when known.
pub fn plan(
    p: &CaseParams,
    ty: &CaseType,
    report: &Report,
    time: i64,
    same_type_this_week: Option<u32>,
) -> Plan {
    let code = &report.category_code;
    let name = category_name(code).unwrap_or(ty.kind.label());
    let mut level = ty.level;
    let mut deadline = ty.deadline.clone();
    let mut why: Vec<String> = Vec::new();

    if ty.kind == Kind::Construction
        && let Some(n) = same_type_this_week.filter(|n| *n >= p.construction_repeat_count)
    {
        level = p.construction_repeat_level;
        why.push(format!("本网格本周第 {n} 起违法建设举报，提级处置"));
    }
    let mut urgent_reasons: Vec<String> = Vec::new();
    if ty.kind == Kind::Manhole {
        if p.is_night(time) {
            urgent_reasons.push(format!("夜间上报（{} 时）", local_hour(time)));
        }
        let texts = [Some(report.title.as_str()), report.address.as_deref(), Some(report.description.as_str())];
        if let Some(kw) = p.main_road_keywords.iter().find(|kw| {
            texts
                .iter()
                .any(|t| t.and_then(present).is_some_and(|t| t.contains(kw.as_str())))
        }) {
            urgent_reasons.push(format!("位于主干道（{kw}）"));
        }
    }
    let urgent = !urgent_reasons.is_empty();
    if urgent {
        deadline = p.manhole_urgent_deadline.clone();
        why.push(format!("紧急：{}", urgent_reasons.join("，")));
    }

    let (to, place) = match &report.grid {
        Some(grid) => {
            let street = grid[..9].to_owned();
            let place = format!("所属网格 {grid}，已通知街道 {street} 城管巡查队");
            (street, place)
        }
        None => {
            let issue = report.no_grid.as_deref().unwrap_or("无网格信息");
            let place = format!(
                "案件无所属网格（{issue}），已通知市级城管值班（{}）",
                p.city_duty_unit
            );
            (p.city_duty_unit.clone(), place)
        }
    };

    let mut reason = format!(
        "{name}（{code}）属城管{}事项，建议由{}级处置",
        ty.kind.label(),
        level_name(level)
    );
    for w in &why {
        reason.push('；');
        reason.push_str(w);
    }
    match &report.grid {
        Some(grid) => reason.push_str(&format!("；网格 {grid}")),
        None => reason.push_str("；案件无网格，请市级值班指派"),
    }
    let reason = clip(&reason, 480);

    let flag = if urgent { "【紧急】" } else { "" };
    let mut note = format!(
        "{flag}【城管处置建议】{name}（{code}）\n建议层级：{}",
        level_name(level)
    );
    if !why.is_empty() {
        note.push_str(&format!("（{}）", why.join("；")));
    }
    note.push_str(&format!(
        "\n处置要求：{}\n处置时限：{deadline}\n{place}",
        ty.note
    ));

    let ticket = present(&report.ticket).unwrap_or(&report.case);
    let subject = clip(&format!("{flag}【城管】{name}待处置 {ticket}"), 180);
    let mut body = format!(
        "案件：{}　工单号：{ticket}\n类别：{name}（{code}）\n",
        report.case
    );
    if let Some(t) = present(&report.title) {
        body.push_str(&format!("标题：{}\n", clip(t, 200)));
    }
    if let Some(a) = report.address.as_deref().and_then(present) {
        body.push_str(&format!("地址：{}\n", clip(a, 200)));
    }
    if let Some(d) = present(&report.description) {
        body.push_str(&format!("描述：{}\n", clip(d, 1000)));
    }
    body.push_str(&format!("{place}\n建议层级：{}\n", level_name(level)));
    if !why.is_empty() {
        body.push_str(&format!("说明：{}\n", why.join("；")));
    }
    body.push_str(&format!("处置要求：{}\n处置时限：{deadline}", ty.note));

    Plan {
        suggestion: RouteSuggestion::new("chengguan", level, p.route_score, reason),
        note,
        to: (to, PATROL_ROLE.to_owned()),
        subject,
        body,
        urgent,
    }
}

/// Handles one `case.reported` event: hot-spot counting, then the case type's
/// handling. Every step is tried; the first host error is returned after all.
pub fn on_reported(event: &Event) -> Result<(), Error> {
    let report = match parse_report(event) {
        Ok(r) => r,
        Err(why) => {
            warn!("skipped case.reported event {}: {why}", event.id);
            return Ok(());
        }
    };
    let params = CaseParams::from_config()?;
    let mut first_error: Option<Error> = None;
    let mut failed = |what: &str, e: Error| {
        warn!("case {}: {what} failed: {e}", report.case);
        if first_error.is_none() {
            first_error = Some(e);
        }
    };

    // Counted first: the count of this week informs the construction level.
    let counted = match hotspot::on_reported(event, &report) {
        Ok(c) => c,
        Err(e) => {
            failed("hot-spot counting", e);
            None
        }
    };

    if let Some(ty) = params.case_type(&report.category_code) {
        let same_type = counted.map(|rec| {
            ty.codes
                .iter()
                .map(|c| rec.categories.get(c).copied().unwrap_or(0))
                .sum()
        });
        let plan = plan(&params, ty, &report, event.time, same_type);
        match cases::suggest_route(&report.case, &plan.suggestion) {
            Ok(_) => {}
            // A replayed event: the first suggestion still stands.
            Err(Error::Conflict(m)) => {
                warn!("case {}: a route is already suggested: {m}", report.case)
            }
            Err(e) => failed("suggest-route", e),
        }
        if let Err(e) = cases::add_note(&report.case, &plan.note) {
            failed("add-note", e);
        }
        let to = Recipient::Role(plan.to.clone());
        if let Err(e) = messaging::send(&to, &plan.subject, &plan.body) {
            failed("message to the patrol team", e);
        }
        if report.grid.is_none() {
            warn!(
                "case {} has no grid: sent to the city duty unit {}",
                report.case, params.city_duty_unit
            );
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
