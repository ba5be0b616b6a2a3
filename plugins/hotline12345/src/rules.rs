//! The operator-edited rules: classification rules (`[config] rules`) and urgency terms
//! (`[config] urgency`), their parser, and the matching of free text against them.
//!
//! Text and terms are compared after [`fold`]: full-width ASCII forms become
//! half-width and Latin letters lower case, so `ＫＴＶ` in a complaint matches `ktv`
//! in a rule. A term is found when every one of its parts (one for a keyword, several
//! joined by `&` for a phrase) is a substring of the text; a term counts once however
//! often it occurs.

use std::collections::BTreeSet;

use yiwang_sdk::cases::CommandLevel;

/// Separators between the terms of a rule: ASCII and full-width.
const TERM_SEPARATORS: [char; 5] = [',', '，', '、', ';', '；'];
/// Between a rule's head and its terms.
const HEAD_SEPARATORS: [char; 2] = [':', '：'];

/// Full-width ASCII (U+FF01..=U+FF5E) to half-width, the ideographic space to a space,
/// Latin letters to lower case. Everything else is kept.
pub fn fold(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            c => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// A keyword (one part) or a phrase (all parts must occur).
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// As the operator wrote it (folded), for notes and reasons: `井盖&丢`.
    pub text: String,
    /// The folded parts.
    pub parts: Vec<String>,
    pub weight: f64,
}

impl Term {
    /// Whether every part occurs in the folded `text`, ignoring occurrences right after
    /// a negation when one is given.
    pub fn found_in(&self, text: &str, negation: Option<&Negation>) -> bool {
        self.parts.iter().all(|part| {
            text.match_indices(part.as_str())
                .any(|(at, _)| negation.is_none_or(|n| !n.negates(&text[..at])))
        })
    }
}

/// Negation words and how far before a term they reach.
#[derive(Debug, Clone, PartialEq)]
pub struct Negation {
    pub words: Vec<String>,
    /// Characters allowed between the negation and the term.
    pub gap: usize,
}

impl Negation {
    /// Whether the text just before a term (`before`) ends with a negation word, at
    /// most `gap` characters away. Punctuation or a space ends the reach: in
    /// `没有问题，有人受伤` nothing negates 有人受伤.
    pub fn negates(&self, before: &str) -> bool {
        let mut rest = before;
        for skipped in 0..=self.gap {
            if self.words.iter().any(|w| rest.ends_with(w.as_str())) {
                return true;
            }
            let Some(last) = rest.chars().next_back() else {
                return false;
            };
            if skipped == self.gap || last.is_whitespace() || is_punctuation(last) {
                return false;
            }
            rest = &rest[..rest.len() - last.len_utf8()];
        }
        false
    }
}

/// ASCII and CJK punctuation (the CJK symbols block, full-width forms, general
/// punctuation such as `…` and `—`).
pub fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c, '\u{3000}'..='\u{303F}' | '\u{FF01}'..='\u{FF0F}' | '\u{FF1A}'..='\u{FF20}'
            | '\u{FF3B}'..='\u{FF40}' | '\u{FF5B}'..='\u{FF65}' | '\u{2010}'..='\u{205E}' | '\u{00B7}')
}

/// One classification rule: a category, its department and its weighted terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The 6-digit category code.
    pub code: String,
    pub name: String,
    pub department: String,
    /// The command level of the suggested route; `None`: the configured default.
    pub level: Option<CommandLevel>,
    pub terms: Vec<Term>,
}

/// The terms of a rule found in a text, and their sum.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleScore<'r> {
    pub rule: &'r Rule,
    pub score: f64,
    pub matched: Vec<&'r Term>,
}

impl Rule {
    pub fn score<'r>(&'r self, text: &str) -> RuleScore<'r> {
        let matched: Vec<&Term> = self.terms.iter().filter(|t| t.found_in(text, None)).collect();
        RuleScore { rule: self, score: matched.iter().map(|t| t.weight).sum(), matched }
    }
}

/// Where a term or rule went wrong: `line 3 (`...`)`.
fn at(line_no: usize, line: &str) -> String {
    format!("line {line_no} (`{}`)", line.trim())
}

/// The lines that hold something: (1-based line number, text), comments and blank
/// lines left out.
fn content_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// Parses the terms after a head: `摆摊=2, 井盖&丢, ...`. `weighted`: whether `=<w>` is
/// allowed.
fn parse_terms(
    body: &str,
    weighted: bool,
    keyword_weight: f64,
    phrase_weight: f64,
) -> Result<Vec<Term>, String> {
    let mut terms: Vec<Term> = Vec::new();
    for raw in body.split(TERM_SEPARATORS).map(str::trim).filter(|t| !t.is_empty()) {
        let raw = fold(raw);
        let (text, weight) = match raw.rsplit_once('=') {
            Some(_) if !weighted => return Err(format!("term `{raw}`: urgency terms take no weight")),
            Some((text, w)) => {
                let weight: f64 = w
                    .trim()
                    .parse()
                    .ok()
                    .filter(|w: &f64| w.is_finite() && *w > 0.0)
                    .ok_or_else(|| format!("term `{raw}`: weight `{}` is not a positive number", w.trim()))?;
                (text.trim().to_owned(), Some(weight))
            }
            None => (raw.clone(), None),
        };
        let parts: Vec<String> = text.split('&').map(|p| p.trim().to_owned()).collect();
        if parts.iter().any(String::is_empty) {
            return Err(format!("term `{raw}`: empty keyword (a `&` or `=` with nothing beside it)"));
        }
        if parts.iter().any(|p| p.contains('=')) {
            return Err(format!("term `{raw}`: more than one `=`"));
        }
        let text = parts.join("&");
        if terms.iter().any(|t| t.text == text) {
            return Err(format!("term `{text}` is listed twice"));
        }
        let weight = weight.unwrap_or(if parts.len() > 1 { phrase_weight } else { keyword_weight });
        terms.push(Term { text, parts, weight });
    }
    if terms.is_empty() {
        return Err("no terms after the `:`".into());
    }
    Ok(terms)
}

/// Parses the `rules` text. Errors name the line and what is wrong with it.
pub fn parse_rules(text: &str, keyword_weight: f64, phrase_weight: f64) -> Result<Vec<Rule>, String> {
    let mut rules: Vec<Rule> = Vec::new();
    for (no, line) in content_lines(&fold(text)) {
        let err = |why: String| format!("{}: {why}", at(no, line));
        let (head, body) = line
            .split_once(HEAD_SEPARATORS)
            .ok_or_else(|| err("expected `<code> <department>[@<level>] <name>: <term>=<weight>, ...`".into()))?;
        let mut words = head.split_whitespace();
        let code = words.next().unwrap_or_default();
        if !(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())) {
            return Err(err(format!("category code `{code}` is not 6 digits")));
        }
        let target = words.next().ok_or_else(|| err("no department after the category code".into()))?;
        let (department, level) = match target.split_once('@') {
            Some((d, l)) => (d, Some(l.parse::<CommandLevel>().map_err(err)?)),
            None => (target, None),
        };
        if !is_code(department) {
            return Err(err(format!("department `{department}` is not a department code (a-z, 0-9, `-`)")));
        }
        let name = words.collect::<Vec<_>>().join(" ");
        if name.is_empty() {
            return Err(err("no category name before the `:`".into()));
        }
        if rules.iter().any(|r| r.code == code) {
            return Err(err(format!("category `{code}` has a rule already")));
        }
        let terms = parse_terms(body, true, keyword_weight, phrase_weight).map_err(err)?;
        rules.push(Rule { code: code.to_owned(), name, department: department.to_owned(), level, terms });
    }
    if rules.is_empty() {
        return Err("no rules".into());
    }
    Ok(rules)
}

/// How urgent a report reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Urgency {
    Normal,
    High,
    Urgent,
}

impl Urgency {
    pub fn name(self) -> &'static str {
        match self {
            Urgency::Normal => "normal",
            Urgency::High => "high",
            Urgency::Urgent => "urgent",
        }
    }

    /// The word used in notes.
    pub fn label(self) -> &'static str {
        match self {
            Urgency::Normal => "一般",
            Urgency::High => "较急",
            Urgency::Urgent => "紧急",
        }
    }
}

/// The urgency terms, highest level first.
#[derive(Debug, Clone, PartialEq)]
pub struct UrgencyRules {
    pub levels: Vec<(Urgency, Vec<Term>)>,
}

impl UrgencyRules {
    /// The highest level with a term in `text` (not negated), and the terms found at it.
    pub fn assess<'a>(&'a self, text: &str, negation: &Negation) -> (Urgency, Vec<&'a Term>) {
        for (level, terms) in &self.levels {
            let found: Vec<&Term> = terms.iter().filter(|t| t.found_in(text, Some(negation))).collect();
            if !found.is_empty() {
                return (*level, found);
            }
        }
        (Urgency::Normal, Vec::new())
    }
}

/// Parses the `urgency` text: lines `urgent: ...` and `high: ...`.
pub fn parse_urgency(text: &str) -> Result<UrgencyRules, String> {
    let mut levels: Vec<(Urgency, Vec<Term>)> = Vec::new();
    for (no, line) in content_lines(&fold(text)) {
        let err = |why: String| format!("{}: {why}", at(no, line));
        let (head, body) = line
            .split_once(HEAD_SEPARATORS)
            .ok_or_else(|| err("expected `urgent: <term>, ...` or `high: <term>, ...`".into()))?;
        let level = match head.trim() {
            "urgent" => Urgency::Urgent,
            "high" => Urgency::High,
            other => return Err(err(format!("level `{other}` is neither `urgent` nor `high`"))),
        };
        if levels.iter().any(|(l, _)| *l == level) {
            return Err(err(format!("level `{}` is listed twice", level.name())));
        }
        levels.push((level, parse_terms(body, false, 1.0, 1.0).map_err(err)?));
    }
    levels.sort_by_key(|(level, _)| std::cmp::Reverse(*level));
    Ok(UrgencyRules { levels })
}

/// A comma-separated list (`、，` accepted), trimmed, empty items left out.
pub fn parse_list(text: &str) -> Vec<String> {
    fold(text)
        .split(TERM_SEPARATORS)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A department code: `[a-z0-9-]+`.
pub fn is_code(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_with_full_width_separators_defaults_and_comments() {
        let text = "# 注释\n\n020501 chengguan@street 占道经营：摆摊＝2，占道经营=3、人行道&卖\n020405 chengguan 井盖缺失致险: 井盖\n";
        let rules = parse_rules(text, 1.0, 2.5).unwrap();
        assert_eq!(rules.len(), 2);
        let r = &rules[0];
        assert_eq!((r.code.as_str(), r.department.as_str(), r.name.as_str(), r.level), ("020501", "chengguan", "占道经营", Some(CommandLevel::Street)));
        let terms: Vec<(&str, f64)> = r.terms.iter().map(|t| (t.text.as_str(), t.weight)).collect();
        assert_eq!(terms, [("摆摊", 2.0), ("占道经营", 3.0), ("人行道&卖", 2.5)]);
        assert_eq!((rules[1].level, rules[1].terms[0].weight), (None, 1.0));
    }

    #[test]
    fn bad_rules_are_named_by_line() {
        for (text, needle) in [
            ("02050 chengguan 占道经营: 摆摊=2", "line 1 (`02050 chengguan 占道经营: 摆摊=2`): category code `02050` is not 6 digits"),
            ("020501 chengguan 占道经营 摆摊=2", "expected `<code>"),
            ("020501 城管 占道经营: 摆摊=2", "department `城管` is not a department code"),
            ("020501 chengguan@province 占道经营: 摆摊=2", "`province` is not a command level"),
            ("020501 chengguan: 摆摊=2", "no category name"),
            ("020501 chengguan 占道经营: 摆摊=两", "weight `两` is not a positive number"),
            ("020501 chengguan 占道经营: 摆摊=-1", "weight `-1`"),
            ("020501 chengguan 占道经营: 摆摊&=2", "empty keyword"),
            ("020501 chengguan 占道经营: ,", "no terms"),
            ("020501 chengguan 占道经营: 摆摊, 摆摊=3", "listed twice"),
            ("#\n020501 chengguan 占道经营: 摆摊\n020501 chengguan 占道: 占道", "line 3 (`020501 chengguan 占道: 占道`): category `020501` has a rule already"),
            ("# only a comment", "no rules"),
        ] {
            let err = parse_rules(text, 1.0, 2.0).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn terms_count_once_and_phrases_need_every_part() {
        let rules = parse_rules("020405 chengguan 井盖缺失致险: 井盖=2, 井盖&丢=3, 井盖&破损=2", 1.0, 2.0).unwrap();
        let s = rules[0].score(&fold("小区门口井盖丢了，井盖旁边很危险"));
        assert_eq!(s.score, 5.0);
        assert_eq!(s.matched.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(), ["井盖", "井盖&丢"]);
    }

    #[test]
    fn negations_reach_a_few_characters_but_not_across_punctuation() {
        let n = Negation { words: parse_list("没有, 没, 无, 未, 不会"), gap: 2 };
        let urgency = parse_urgency("high: 危险\nurgent: 有人受伤, 被困, 起火").unwrap();
        assert_eq!(urgency.levels[0].0, Urgency::Urgent, "highest level first");
        let level = |t: &str| urgency.assess(&fold(t), &n).0;
        assert_eq!(level("车祸现场有人受伤"), Urgency::Urgent);
        assert_eq!(level("刮擦，没有人受伤"), Urgency::Normal);
        assert_eq!(level("电梯故障，无人员被困"), Urgency::Normal);
        assert_eq!(level("厨房并未起火"), Urgency::Normal);
        assert_eq!(level("没问题，有人受伤"), Urgency::Urgent);
        assert_eq!(level("不断冒烟，很危险"), Urgency::High);
        assert_eq!(level("未起火，但有人被困"), Urgency::Urgent, "one un-negated term is enough");
    }

    #[test]
    fn bad_urgency_lines_are_named() {
        assert!(parse_urgency("critical: 起火").unwrap_err().contains("line 1 (`critical: 起火`): level `critical`"));
        assert!(parse_urgency("urgent: 起火=3").unwrap_err().contains("take no weight"));
        assert!(parse_urgency("urgent: 起火\nurgent: 爆炸").unwrap_err().contains("listed twice"));
    }

    #[test]
    fn folding_makes_full_width_ascii_half_width() {
        assert_eq!(fold("ＫＴＶ　１２号，Ａ栋。"), "ktv 12号,a栋。");
    }
}
