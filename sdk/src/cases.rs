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
