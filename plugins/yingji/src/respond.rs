//! The response to a warning (预警响应), on `warning.*` events.
//!
//! For a warning whose severity is at least `respond-min-severity`:
//!
//! 1. **open an emergency case** in the category the warning's `model`
//!    parameter names (`case-category-<model>`: water-level → 路面积水内涝,
//!    gas → 燃气泄漏, hazmat → 危化品运输异常) or, for a warning from elsewhere
//!    (an imported CAP alert), the one its CAP category names
//!    (`case-category-<category>`); a category with neither is left alone. The
//!    case engine joins it to an open case of the same kind nearby, so a
//!    sensor that stays above its level adds to one case.
//! 2. **suggest the route**: 应急管理局 at `route-level-severe` for Severe and
//!    Extreme warnings, at `route-level` otherwise;
//! 3. **notify the leaders on duty** (`role:<street>/<duty-role>`, by default
//!    `leader`) of every street the warning's area reaches, and of
//!    `duty-org-unit` (the city);
//! 4. **fan a flood warning out** (a water-level warning, or CAP category Met)
//!    to every community its area covers (`org-unit:<community>`), with the
//!    warning's instruction.
//!
//! An update of a warning answered already (`msg_type` `Update`, its first
//! warning in `references`) opens no case: it is noted on the case opened for
//! the warning. A cancel (`warning-cancelled.*`) is noted on that case too, which
//! stays open for the people handling it to close. A warning's chain is kept
//! in `yingji-tracks` under `chain:<first warning>`.
//!
//! A subject (one sensor or vehicle and rule) is answered again only after
//! `renotify-min` minutes or when its severity rises; what was answered when
//! is kept in the `yingji-tracks` data set under `alert:<subject>`. Each
//! answer is published on `yingji.response` with the case, the leaders and the
//! communities reached. A recipient with nobody in it is logged and skipped;
//! the rest are still told.

use std::collections::BTreeMap;

use yiwang_sdk::cases::{CommandLevel, RouteSuggestion};
use yiwang_sdk::events::{MsgType, WarningCancelled, WarningInfo, WarningRaised};
use yiwang_sdk::prelude::*;

use crate::hazmat::TRACKS;

/// What was last answered for a subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "yiwang_sdk::serde")]
struct Answered {
    time: i64,
    rank: u8,
    case: String,
}

/// Severity ranks, lowest first; unknown is 0.
pub fn rank(severity: &str) -> u8 {
    match severity.to_ascii_lowercase().as_str() {
        "minor" => 1,
        "moderate" => 2,
        "severe" => 3,
        "extreme" => 4,
        _ => 0,
    }
}

fn level(name: &str) -> Result<CommandLevel, Error> {
    CommandLevel::ALL
        .into_iter()
        .find(|l| l.name() == name)
        .ok_or_else(|| Error::Invalid(format!("config: `{name}` is not a command level (community, street, district, city)")))
}

/// The response's parameters (`respond-*`, `route-*`, `case-category-*`, ...).
#[derive(Debug, Clone)]
pub struct RespondParams {
    pub min_rank: u8,
    pub renotify_min: i64,
    pub route_level: CommandLevel,
    pub route_level_severe: CommandLevel,
    pub duty_org_unit: String,
    pub duty_role: String,
    pub categories: BTreeMap<String, String>,
}

impl RespondParams {
    pub fn from_config() -> Result<RespondParams, Error> {
        let min = config::get("respond-min-severity").unwrap_or_else(|| "moderate".into());
        let min_rank = rank(&min);
        if min_rank == 0 {
            return Err(Error::Invalid(format!("config: respond-min-severity `{min}` is not minor, moderate, severe or extreme")));
        }
        let categories: BTreeMap<String, String> = config::all()
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("case-category-")?.to_owned(), v)))
            .collect();
        if let Some((k, v)) = categories.iter().find(|(_, v)| !(v.len() == 6 && v.bytes().all(|b| b.is_ascii_digit()))) {
            return Err(Error::Invalid(format!("config: case-category-{k} `{v}` is not a 6-digit category code")));
        }
        let renotify_min: i64 = config::get_parsed("renotify-min")?;
        if renotify_min <= 0 {
            return Err(Error::Invalid("config: renotify-min must be positive".into()));
        }
        Ok(RespondParams {
            min_rank,
            renotify_min,
            route_level: level(&config::get("route-level").unwrap_or_else(|| "street".into()))?,
            route_level_severe: level(&config::get("route-level-severe").unwrap_or_else(|| "district".into()))?,
            duty_org_unit: config::get("duty-org-unit").unwrap_or_default(),
            duty_role: config::get("duty-role").unwrap_or_else(|| "leader".into()),
            categories,
        })
    }
}

/// What the response reads of a warning beyond its fields.
pub trait InfoExt {
    /// The value of parameter `name`, if the warning has it.
    fn parameter(&self, name: &str) -> Option<&str>;
    /// What the warning is about, for answering it once.
    fn subject(&self) -> String;
    /// Whether this is a flood warning, to be fanned out to communities.
    fn is_flood(&self) -> bool;
}

impl InfoExt for WarningInfo {
    fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The model and rule with the sensor or vehicle, else the event and headline.
    fn subject(&self) -> String {
        let who = self.parameter("sensor").or(self.parameter("vehicle"));
        match (self.parameter("model"), who) {
            (Some(model), Some(who)) => format!("{model}:{}:{who}", self.parameter("rule").unwrap_or("level")),
            _ => format!("{}:{}", self.event, self.headline),
        }
    }

    /// A warning of the water-level model; without a model, one of category `met`.
    fn is_flood(&self) -> bool {
        match self.parameter("model") {
            Some(model) => model == "water-level",
            None => self.category == "met",
        }
    }
}

/// Answer one `warning.*` event.
pub fn handle(event: &Event) -> Result<(), Error> {
    let p = RespondParams::from_config()?;
    let w: WarningRaised = match event.payload() {
        Ok(w) => w,
        Err(e) => {
            warn!("skipped warning event {}: {e}", event.id);
            return Ok(());
        }
    };
    let info = &w.info;
    let severity = rank(&info.severity);
    if severity < p.min_rank {
        debug!("warning {} ({}) is below respond-min-severity", w.warning, info.severity);
        return Ok(());
    }
    let key = info.parameter("model").unwrap_or(&info.category);
    let Some(category) = p.categories.get(key) else {
        debug!("warning {}: no case-category-{key}, not answered", w.warning);
        return Ok(());
    };
    // An update of a warning answered already is noted on its case: no
    // second case, nobody told twice (the update repeats the warning).
    let chain = format!("chain:{}", w.references.first().unwrap_or(&w.warning));
    if w.msg_type == MsgType::Update
        && let Some(a) = data::get(TRACKS, &chain)?.and_then(|r| r.value_json::<Answered>().ok())
    {
        let note = format!("预警更新 {}（{}）：{}\n{}", w.warning, info.severity, info.headline, info.description);
        cases::add_note(&a.case, &note)?;
        data::put(TRACKS, &chain, &Answered { time: event.time, rank: severity.max(a.rank), case: a.case.clone() })?;
        info!("warning {} updates {chain}: noted on case {}", w.warning, a.case);
        return Ok(());
    }
    let subject = format!("alert:{}", info.subject());
    let earlier: Option<Answered> = data::get(TRACKS, &subject)?.and_then(|r| r.value_json().ok());
    if let Some(a) = &earlier
        && event.time - a.time < p.renotify_min * 60_000
        && severity <= a.rank
    {
        info!("warning {} repeats {subject} (case {}), answered {} s ago", w.warning, a.case, (event.time - a.time) / 1000);
        return Ok(());
    }

    let draft = CaseDraft {
        category_code: category.clone(),
        title: info.headline.clone(),
        description: format!("{}\n处置要求：{}\n（预警 {}，来源 {}）", info.description, info.instruction, w.warning, w.source),
        location: event.location,
        channel: SourceChannel::Warning,
        evidence: Vec::new(),
    };
    let case = cases::open_case(&draft)?;
    let level = if severity >= rank("severe") { p.route_level_severe } else { p.route_level };
    let reason = format!("{}预警（{}）由应急管理局牵头处置", info.event, info.severity);
    match cases::suggest_route(&case, &RouteSuggestion::new("yingji", level, 0.9, reason)) {
        Ok(_) => {}
        // The warning joined a case this plugin has already routed.
        Err(Error::Conflict(_)) => debug!("case {case}: a route is already suggested"),
        Err(e) => warn!("case {case}: no route suggested: {e}"),
    }

    let subject_line = format!("【{}】{}", severity_word(severity), info.headline);
    let body = format!("{}\n{}\n案件 {case}", info.description, info.instruction);
    let mut leaders = Vec::new();
    let duty = (!p.duty_org_unit.is_empty()).then_some(p.duty_org_unit.as_str());
    for unit in w.streets.iter().map(String::as_str).chain(duty) {
        let to = Recipient::Role((unit.to_owned(), p.duty_role.clone()));
        match messaging::send(&to, &subject_line, &body) {
            Ok(_) => leaders.push(unit.to_owned()),
            Err(e) => warn!("case {case}: the duty leaders of {unit} were not told: {e}"),
        }
    }
    let mut communities = Vec::new();
    if info.is_flood() {
        for community in &w.communities {
            let text = format!("{}\n请立即通知居民：{}", info.description, info.instruction);
            match messaging::send(&Recipient::OrgUnit(community.clone()), &format!("【防汛预警】{}", info.headline), &text) {
                Ok(_) => communities.push(community.clone()),
                Err(e) => warn!("case {case}: community {community} was not told: {e}"),
            }
        }
    }
    let note = format!(
        "预警 {} 已响应：通知值班领导 {} 处；{}",
        w.warning,
        leaders.len(),
        match info.is_flood() {
            true => format!("防汛预警下发至 {} 个社区（{}）", communities.len(), communities.join("、")),
            false => "非防汛预警，未向社区群发".to_owned(),
        }
    );
    if let Err(e) = cases::add_note(&case, &note) {
        warn!("case {case}: note not added: {e}");
    }
    data::put(TRACKS, &subject, &Answered { time: event.time, rank: severity, case: case.clone() })?;
    data::put(TRACKS, &chain, &Answered { time: event.time, rank: severity, case: case.clone() })?;
    bus::publish(
        "yingji.response",
        &json!({
            "warning": w.warning, "case": case, "category_code": category, "severity": info.severity,
            "leaders": leaders, "communities": communities, "subject": subject,
        }),
        event.location,
    )?;
    Ok(())
}

/// Answer one `warning-cancelled.*` event: a warning this plugin answered was
/// withdrawn by its raiser. The cancel is noted on the case opened for it, which
/// stays open: the people handling it close it once they have checked the scene.
pub fn cancelled(event: &Event) -> Result<(), Error> {
    let c: WarningCancelled = match event.payload() {
        Ok(c) => c,
        Err(e) => {
            warn!("skipped warning-cancelled event {}: {e}", event.id);
            return Ok(());
        }
    };
    let Some(root) = c.references.first() else { return Ok(()) };
    let chain = format!("chain:{root}");
    let Some(a) = data::get(TRACKS, &chain)?.and_then(|r| r.value_json::<Answered>().ok()) else {
        debug!("cancel {} of warning {root}: it was not answered", c.warning);
        return Ok(());
    };
    let note = format!("预警 {root} 已由 {} 解除（{}）：{}。案件不自动结案，请核实现场后按流程办结。", c.source, c.warning, c.reason);
    cases::add_note(&a.case, &note)?;
    info!("warning {root} cancelled: noted on case {}", a.case);
    Ok(())
}

fn severity_word(rank: u8) -> &'static str {
    match rank {
        4 => "特别严重",
        3 => "严重",
        2 => "较重",
        _ => "一般",
    }
}
