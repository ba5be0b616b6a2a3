//! Cases (案件): open them, annotate them, raise warnings, suggest routes.
//!
//! Each function needs its word in the `[grants] cases` list: `open`, `note`,
//! `evidence`, `warn` or `route`.

use std::fmt;
use std::str::FromStr;

pub use crate::__private::bindings::yiwang::gov::cases::{CommandLevel, RouteSuggestion};
use crate::sys;
use crate::{CaseDraft, Error, Warning};

/// Opens a case; returns its id.
pub fn open_case(draft: &CaseDraft) -> Result<String, Error> {
    sys::cases::open_case(draft)
}

/// Adds a note to a case.
pub fn add_note(case_id: &str, text: &str) -> Result<(), Error> {
    sys::cases::add_note(case_id, text)
}

/// Attaches a blob, named by its sha256 digest, to a case as evidence.
pub fn add_evidence(case_id: &str, digest: &str) -> Result<(), Error> {
    sys::cases::add_evidence(case_id, digest)
}

/// Raises a warning outside a model run; returns its id.
pub fn raise_warning(warning: &Warning) -> Result<String, Error> {
    sys::cases::raise_warning(warning)
}

/// Updates a warning this plugin raised (CAP `Update`); returns the update's id.
///
/// `id` is the warning as first raised or any later update of it. `warning` replaces
/// what it said; the host publishes it on `warning.<category>` like a new warning,
/// with `msg_type` `Update` and the ids of the earlier messages in `references`, so
/// a model updates its warning instead of raising a new one or staying silent. A
/// warning another plugin raised is [`Error::Denied`]; a cancelled one
/// [`Error::Conflict`]; an unknown id [`Error::NotFound`]. Needs `warn`, and counts
/// against `warnings-per-minute`. Since `yiwang:gov@0.2.1`.
///
/// ```
/// use yiwang_sdk::prelude::*;
/// # let host = yiwang_sdk::mock::MockHost::new().install();
/// # let at = GeoPoint { lat: 32.05, lon: 118.79 };
/// # let mut warning = Warning {
/// #     category: WarningCategory::Met, event: "内涝".into(), urgency: Urgency::Expected,
/// #     severity: Severity::Moderate, certainty: Certainty::Likely,
/// #     area: Area::circle("长江路下穿通道", at, 0.5), headline: "积水 0.3 m".into(),
/// #     description: String::new(), instruction: String::new(), parameters: Vec::new(),
/// # };
/// let id = cases::raise_warning(&warning)?;
/// warning.severity = Severity::Severe;
/// warning.headline = "积水 0.6 m，仍在上涨".into();
/// let update = cases::update_warning(&id, &warning)?;
/// cases::cancel_warning(&update, "水位已回落")?;
/// # assert_eq!(host.warning_changes().len(), 2);
/// # Ok::<(), yiwang_sdk::Error>(())
/// ```
pub fn update_warning(id: &str, warning: &Warning) -> Result<String, Error> {
    sys::cases::update_warning(id, warning)
}

/// Cancels a warning this plugin raised (CAP `Cancel`), saying why (1-500
/// characters); returns the cancel's id.
///
/// `id` is the warning or any update of it. The host publishes the cancel on
/// `warning-cancelled.<category>`; a case opened for the warning is not closed by
/// it. A warning another plugin raised is [`Error::Denied`]; one cancelled already
/// [`Error::Conflict`]. Needs `warn`, and counts against `warnings-per-minute`.
/// Since `yiwang:gov@0.2.1`.
pub fn cancel_warning(id: &str, reason: &str) -> Result<String, Error> {
    sys::cases::cancel_warning(id, reason)
}

/// Suggests where an open case should go; returns the suggestion's id.
///
/// A dispatcher sees it with the case and accepts it (the case goes to that department
/// at that level) or overrides it. A plugin has one pending suggestion per case: a
/// second one is [`Error::Conflict`] until a dispatch settles the first. An unknown
/// department, a score outside 0 to 1 or an empty reason is [`Error::Invalid`], naming
/// the field.
///
/// ```
/// use yiwang_sdk::cases::{self, CommandLevel, RouteSuggestion};
/// # let _host = yiwang_sdk::mock::MockHost::new()
/// #     .known_department("housing", "住房和城乡建设局")
/// #     .case("case-id")
/// #     .install();
///
/// let suggestion = RouteSuggestion::new("housing", CommandLevel::District, 0.8, "施工类事件由住建部门处置");
/// let id = cases::suggest_route("case-id", &suggestion)?;
/// # Ok::<(), yiwang_sdk::Error>(())
/// ```
pub fn suggest_route(case_id: &str, suggestion: &RouteSuggestion) -> Result<String, Error> {
    sys::cases::suggest_route(case_id, suggestion)
}

impl RouteSuggestion {
    /// A suggestion: `department` (a code) at `level`, `score` from 0 to 1, and why.
    pub fn new(
        department: impl Into<String>,
        level: CommandLevel,
        score: f64,
        reason: impl Into<String>,
    ) -> Self {
        RouteSuggestion {
            department: department.into(),
            level,
            score,
            reason: reason.into(),
        }
    }
}

impl CommandLevel {
    /// Every level, lowest first.
    pub const ALL: [CommandLevel; 4] = [
        CommandLevel::Community,
        CommandLevel::Street,
        CommandLevel::District,
        CommandLevel::City,
    ];

    /// The level's name: `community`, `street`, `district` or `city`.
    pub fn name(self) -> &'static str {
        match self {
            CommandLevel::Community => "community",
            CommandLevel::Street => "street",
            CommandLevel::District => "district",
            CommandLevel::City => "city",
        }
    }
}

impl fmt::Display for CommandLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CommandLevel {
    type Err = String;

    /// Parses a level's name, as in `config::get_parsed::<CommandLevel>("level")`.
    fn from_str(s: &str) -> Result<Self, String> {
        CommandLevel::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| {
                format!("`{s}` is not a command level (community, street, district, city)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_by_name() {
        for level in CommandLevel::ALL {
            assert_eq!(level.name().parse::<CommandLevel>(), Ok(level));
            assert_eq!(level.to_string(), level.name());
        }
        let err = "province".parse::<CommandLevel>().unwrap_err();
        assert!(err.contains("`province`"), "{err}");
    }

    #[test]
    fn natively_there_is_no_host() {
        let s = RouteSuggestion::new("housing", CommandLevel::District, 0.8, "施工");
        assert_eq!(s.department, "housing");
        assert!(matches!(
            suggest_route("c1", &s),
            Err(Error::Unavailable(_))
        ));
    }
}
