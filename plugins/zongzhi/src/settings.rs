//! The plugin's parameters, read from the `[config]` table of `plugin.toml` and
//! checked as a whole: a value that does not fit refuses the load (`init`).

use yiwang_sdk::cases::CommandLevel;
use yiwang_sdk::prelude::*;

use crate::calendar::LocalTime;

/// The roles a notification may go to: the ones the `message` grant covers.
pub const ROLES: [&str; 2] = ["grid-worker", "leader"];

/// A lifecycle signal that a street cannot resolve a case (街道吹哨).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `case.return`: the street handed the case back to the dispatcher.
    Return,
    /// `case.fail-check`, as often as `fail-checks-for-call-in` says.
    FailCheck,
    /// `case.overdue`: a step ran past its deadline.
    Overdue,
    /// `case.request-extension`: the street asked for more time.
    RequestExtension,
}

impl Signal {
    /// The signal of a `case.<action>` topic's action, if it is one.
    pub fn of_action(action: &str) -> Option<Signal> {
        match action {
            "return" => Some(Signal::Return),
            "fail-check" => Some(Signal::FailCheck),
            "overdue" => Some(Signal::Overdue),
            "request-extension" => Some(Signal::RequestExtension),
            _ => None,
        }
    }

    /// The action's name, as in the topic.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Return => "return",
            Signal::FailCheck => "fail-check",
            Signal::Overdue => "overdue",
            Signal::RequestExtension => "request-extension",
        }
    }
}

/// What the plugin does with one category of case.
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    /// The 6-digit category code, e.g. `020601`.
    pub code: String,
    /// Its Chinese name, for notes, messages and reports.
    pub name: String,
    /// The handling note added to each case (处置要求).
    pub note: String,
    /// The suggested route: department and command level.
    pub department: String,
    pub level: CommandLevel,
    /// The district department a street calls in (吹哨报到) when it cannot resolve the case.
    pub call_in: String,
    /// The roles of the community told of each case.
    pub notify: Vec<String>,
}

/// Every parameter of the plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub categories: Vec<Category>,
    /// Codes of the 综治 family that belong to other departments (020604 其他
    /// goes to the command centre): ignored quietly, not logged as unknown.
    pub others_in_family: Vec<String>,
    /// The confidence of a grid event's route suggestion (0-1).
    pub route_score: f64,
    /// The confidence of a call-in route suggestion (0-1).
    pub call_in_score: f64,
    pub call_in_signals: Vec<Signal>,
    /// The command levels at which a signal calls a district department in.
    pub call_in_levels: Vec<CommandLevel>,
    /// How many failed checks (返工) make a call-in.
    pub fail_checks_for_call_in: u32,
    pub local: LocalTime,
    /// The category of an overdue visit case (重点人员走访逾期).
    pub visit_category: String,
    /// The channel such a case is opened on.
    pub visit_channel: SourceChannel,
    /// At most this many overdue-visit cases are opened per `time.day`.
    pub max_visit_cases_per_day: u32,
    /// Records per data query page (1-1000).
    pub page_size: u32,
    /// At most this many pages are read per data set and event.
    pub max_pages: u32,
}

fn invalid(message: String) -> Error {
    Error::Invalid(format!("config: {message}"))
}

fn text(key: &str) -> Result<String, Error> {
    match config::get(key) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => Err(invalid(format!("`{key}` is not set"))),
    }
}

fn list(key: &str) -> Result<Vec<String>, Error> {
    let items: Vec<String> = text(key)?
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        return Err(invalid(format!("`{key}` lists nothing")));
    }
    Ok(items)
}

fn level(key: &str, name: &str) -> Result<CommandLevel, Error> {
    name.parse()
        .map_err(|_| invalid(format!("`{key}`: `{name}` is not community, street, district or city")))
}

/// A department code as the host spells them: a-z, 0-9, `-`, `_`.
fn department(key: &str, code: &str) -> Result<String, Error> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(code.to_owned())
    } else {
        Err(invalid(format!("`{key}`: `{code}` is not a department code")))
    }
}

fn score(key: &str) -> Result<f64, Error> {
    let value: f64 = config::get_parsed(key)?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(invalid(format!("`{key}`: {value} is not between 0 and 1")))
    }
}

fn bounded(key: &str, min: i64, max: i64) -> Result<i64, Error> {
    let value: i64 = config::get_parsed(key)?;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(invalid(format!("`{key}`: {value} is not within {min}..={max}")))
    }
}

/// Whether `code` is a 6-digit category code.
pub fn is_category_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

impl Category {
    fn load(code: &str) -> Result<Category, Error> {
        if !is_category_code(code) {
            return Err(invalid(format!(
                "`categories`: `{code}` is not a 6-digit category code"
            )));
        }
        let route_key = format!("route-{code}");
        let route = text(&route_key)?;
        let (dept, lvl) = route
            .split_once('/')
            .ok_or_else(|| invalid(format!("`{route_key}`: `{route}` is not `<department>/<level>`")))?;
        let call_in_key = format!("call-in-{code}");
        let notify_key = format!("notify-{code}");
        let notify = list(&notify_key)?;
        if let Some(bad) = notify.iter().find(|r| !ROLES.contains(&r.as_str())) {
            return Err(invalid(format!(
                "`{notify_key}`: `{bad}` is not one of {}",
                ROLES.join(", ")
            )));
        }
        Ok(Category {
            code: code.to_owned(),
            name: text(&format!("name-{code}"))?,
            note: text(&format!("note-{code}"))?,
            department: department(&route_key, dept.trim())?,
            level: level(&route_key, lvl.trim())?,
            call_in: department(&call_in_key, &text(&call_in_key)?)?,
            notify,
        })
    }
}

impl Settings {
    /// Reads and checks every parameter.
    pub fn load() -> Result<Settings, Error> {
        let mut categories: Vec<Category> = Vec::new();
        for code in list("categories")? {
            if categories.iter().any(|c| c.code == code) {
                return Err(invalid(format!("`categories` lists `{code}` twice")));
            }
            categories.push(Category::load(&code)?);
        }
        let mut call_in_signals = Vec::new();
        for name in list("call-in-signals")? {
            let signal = Signal::of_action(&name).ok_or_else(|| {
                invalid(format!(
                    "`call-in-signals`: `{name}` is not return, fail-check, overdue or request-extension"
                ))
            })?;
            call_in_signals.push(signal);
        }
        let call_in_levels = list("call-in-levels")?
            .iter()
            .map(|name| level("call-in-levels", name))
            .collect::<Result<Vec<_>, _>>()?;
        let visit_category = text("visit-category")?;
        if !categories.iter().any(|c| c.code == visit_category) {
            return Err(invalid(format!(
                "`visit-category`: `{visit_category}` is not in `categories`"
            )));
        }
        let visit_channel = match text("visit-channel")?.as_str() {
            "patrol" => SourceChannel::Patrol,
            "department" => SourceChannel::Department,
            other => {
                return Err(invalid(format!(
                    "`visit-channel`: `{other}` is not patrol or department"
                )));
            }
        };
        let others_in_family: Vec<String> = config::get("others-in-family")
            .unwrap_or_default()
            .split(',')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect();
        if let Some(bad) = others_in_family.iter().find(|c| !is_category_code(c)) {
            return Err(invalid(format!("others-in-family: `{bad}` is not a 6-digit category code")));
        }
        Ok(Settings {
            categories,
            others_in_family,
            route_score: score("route-score")?,
            call_in_score: score("call-in-score")?,
            call_in_signals,
            call_in_levels,
            fail_checks_for_call_in: bounded("fail-checks-for-call-in", 1, 100)? as u32,
            local: LocalTime::utc_plus(bounded("utc-offset-hours", -12, 14)?),
            visit_category,
            visit_channel,
            max_visit_cases_per_day: bounded("max-visit-cases-per-day", 1, 100_000)? as u32,
            page_size: bounded("page-size", 1, 1000)? as u32,
            max_pages: bounded("max-pages", 1, 100_000)? as u32,
        })
    }

    /// The category of `code`, if the plugin handles it.
    pub fn category(&self, code: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.code == code)
    }

    /// Whether `code` shares its first four digits (the 综治 major and minor class
    /// family, e.g. `0206`) with a configured category: an unknown code of that
    /// family is a bad input, any other code is simply another department's case.
    pub fn in_family(&self, code: &str) -> bool {
        code.len() >= 4
            && !self.others_in_family.iter().any(|c| c == code)
            && self
                .categories
                .iter()
                .any(|c| c.code.as_bytes()[..4] == code.as_bytes()[..4])
    }
}
