//! Test guest `router`: suggests routes for reported cases.
//!
//! On `case.reported` it looks the case's category up in the `rules` of its
//! `[config]` (`<category prefix>=<department>@<level>`, comma-separated; the
//! longest matching prefix wins) and, when one matches, suggests that department
//! and command level with the configured `score`. A category no rule covers gets
//! no suggestion.

use yiwang_sdk::cases::{CommandLevel, RouteSuggestion};
use yiwang_sdk::prelude::*;

/// The fields of a `case.reported` payload the router reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(crate = "yiwang_sdk::serde")]
pub struct Reported {
    /// The case id.
    pub case: String,
    /// The case's category code.
    pub category_code: String,
}

/// One rule: a category prefix and where its cases go.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The category codes it covers start with this.
    pub prefix: String,
    /// The department's code.
    pub department: String,
    /// The command level.
    pub level: CommandLevel,
}

/// Parse `rules`: `<prefix>=<department>@<level>`, comma-separated.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, Error> {
    let bad = |part: &str, why: &str| {
        Error::Invalid(format!(
            "config key `rules`: `{part}` {why}; expected <prefix>=<department>@<level>"
        ))
    };
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (prefix, target) = part
                .split_once('=')
                .ok_or_else(|| bad(part, "has no `=`"))?;
            let (department, level) = target
                .split_once('@')
                .ok_or_else(|| bad(part, "has no `@`"))?;
            let (prefix, department) = (prefix.trim(), department.trim());
            if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(part, "needs a category prefix of digits"));
            }
            if department.is_empty() {
                return Err(bad(part, "names no department"));
            }
            let level = level.trim().parse().map_err(|e: String| bad(part, &e))?;
            Ok(Rule {
                prefix: prefix.to_owned(),
                department: department.to_owned(),
                level,
            })
        })
        .collect()
}

/// The rule for `category`: the longest prefix that matches, if any.
pub fn rule_for<'a>(rules: &'a [Rule], category: &str) -> Option<&'a Rule> {
    rules
        .iter()
        .filter(|r| category.starts_with(&r.prefix))
        .max_by_key(|r| r.prefix.len())
}

/// The suggestion `rule` makes for a case of `category`.
pub fn suggestion(rule: &Rule, category: &str, score: f64) -> RouteSuggestion {
    RouteSuggestion::new(
        rule.department.clone(),
        rule.level,
        score,
        format!(
            "类别 {category} 按规则 {} 由 {} 在{}级处置",
            rule.prefix,
            rule.department,
            rule.level.name()
        ),
    )
}

struct Router;

impl Plugin for Router {
    /// Refuses the load when the rules do not parse.
    fn init() -> Result<(), Error> {
        parse_rules(&config::get("rules").unwrap_or_default()).map(|_| ())
    }

    fn handle(event: Event) -> Result<(), Error> {
        let reported: Reported = event.payload_json()?;
        let rules = parse_rules(&config::get("rules").unwrap_or_default())?;
        let score: f64 = config::get_parsed("score")?;
        if let Some(rule) = rule_for(&rules, &reported.category_code) {
            let id = cases::suggest_route(
                &reported.case,
                &suggestion(rule, &reported.category_code, score),
            )?;
            info!("suggested {id} for case {}", reported.case);
        }
        Ok(())
    }
}

export_plugin!(Router);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_prefix_wins() {
        let rules = parse_rules("0203=housing@district, 020302=chengguan@street").unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rule_for(&rules, "020301").unwrap().department, "housing");
        let r = rule_for(&rules, "020302").unwrap();
        assert_eq!(
            (r.department.as_str(), r.level),
            ("chengguan", CommandLevel::Street)
        );
        assert_eq!(rule_for(&rules, "020501"), None);
    }

    #[test]
    fn bad_rules_name_the_part() {
        for (text, needle) in [
            ("0203housing@district", "has no `=`"),
            ("0203=housing", "has no `@`"),
            ("x=housing@district", "digits"),
            ("0203=@district", "no department"),
            ("0203=housing@province", "`province`"),
        ] {
            match parse_rules(text) {
                Err(Error::Invalid(m)) => assert!(m.contains(needle), "{text}: {m}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert_eq!(parse_rules(" "), Ok(vec![]));
    }

    #[test]
    fn the_suggestion_carries_rule_and_score() {
        let rules = parse_rules("0203=housing@district").unwrap();
        let s = suggestion(&rules[0], "020301", 0.8);
        assert_eq!(
            (s.department.as_str(), s.level, s.score),
            ("housing", CommandLevel::District, 0.8)
        );
        assert!(
            s.reason.contains("020301") && s.reason.contains("0203"),
            "{}",
            s.reason
        );
    }

    #[test]
    fn the_payload_parses() {
        let event = Event {
            id: "e1".into(),
            topic: "case.reported".into(),
            source: "user:grid".into(),
            time: 0,
            location: None,
            payload: r#"{"case": "c1", "report": "r1", "ticket": "YW1", "channel": "patrol", "category_code": "020301", "area": null}"#.into(),
        };
        assert_eq!(
            event.payload_json::<Reported>(),
            Ok(Reported {
                case: "c1".into(),
                category_code: "020301".into()
            })
        );
    }
}
