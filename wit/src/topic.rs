//! Hierarchical topics and the patterns that match them.
//!
//! A topic is a dot-separated list of segments, each made of lowercase ASCII
//! letters, digits, `-` and `_`: `iot.reading.water-level`. A pattern may use
//! `*` for exactly one segment and `>` as its last segment for one or more
//! remaining segments. These are the semantics of NATS subjects, so a NATS
//! JetStream bus can carry the same subscriptions unchanged.

use std::fmt;

/// Why a topic or pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The text was empty.
    #[error("topic is empty")]
    Empty,
    /// A segment between two dots was empty.
    #[error("topic `{0}` has an empty segment")]
    EmptySegment(String),
    /// A segment held a character outside `[a-z0-9_-]`.
    #[error("topic `{topic}`: segment `{segment}` may hold only a-z, 0-9, `-` and `_`")]
    BadSegment {
        /// The whole text.
        topic: String,
        /// The offending segment.
        segment: String,
    },
    /// A wildcard appeared in a concrete topic.
    #[error("topic `{0}` contains a wildcard; only patterns may")]
    Wildcard(String),
    /// `>` appeared before the last segment.
    #[error("pattern `{0}`: `>` may only be the last segment")]
    TailNotLast(String),
    /// The text was too long.
    #[error("topic `{0}…` is longer than {MAX_TOPIC_LEN} bytes")]
    TooLong(String),
}

/// The longest topic or pattern accepted, in bytes.
pub const MAX_TOPIC_LEN: usize = 255;

fn check_segment(whole: &str, segment: &str) -> Result<(), TopicError> {
    if segment.is_empty() {
        return Err(TopicError::EmptySegment(whole.to_owned()));
    }
    let ok = segment
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(TopicError::BadSegment { topic: whole.to_owned(), segment: segment.to_owned() })
    }
}

fn check_len(text: &str) -> Result<(), TopicError> {
    if text.is_empty() {
        return Err(TopicError::Empty);
    }
    if text.len() > MAX_TOPIC_LEN {
        let cut = text.char_indices().take_while(|(i, _)| *i < 32).map(|(_, c)| c).collect();
        return Err(TopicError::TooLong(cut));
    }
    Ok(())
}

/// A concrete topic such as `report.snapshot`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(String);

impl Topic {
    /// Parse and validate a concrete topic.
    pub fn parse(text: &str) -> Result<Self, TopicError> {
        check_len(text)?;
        for segment in text.split('.') {
            if segment == "*" || segment == ">" {
                return Err(TopicError::Wildcard(text.to_owned()));
            }
            check_segment(text, segment)?;
        }
        Ok(Topic(text.to_owned()))
    }

    /// The topic as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Part {
    Literal(String),
    One,
    Tail,
}

/// A subscription or grant pattern such as `report.*` or `iot.>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicPattern {
    text: String,
    parts: Vec<Part>,
}

impl TopicPattern {
    /// Parse and validate a pattern.
    pub fn parse(text: &str) -> Result<Self, TopicError> {
        check_len(text)?;
        let segments: Vec<&str> = text.split('.').collect();
        let mut parts = Vec::with_capacity(segments.len());
        for (i, segment) in segments.iter().enumerate() {
            let part = match *segment {
                "*" => Part::One,
                ">" if i + 1 == segments.len() => Part::Tail,
                ">" => return Err(TopicError::TailNotLast(text.to_owned())),
                literal => {
                    check_segment(text, literal)?;
                    Part::Literal(literal.to_owned())
                }
            };
            parts.push(part);
        }
        Ok(TopicPattern { text: text.to_owned(), parts })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern has no wildcard.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// Whether `topic` matches this pattern.
    pub fn matches(&self, topic: &str) -> bool {
        let mut segments = topic.split('.');
        for part in &self.parts {
            match part {
                Part::Tail => return segments.next().is_some(),
                Part::One => {
                    if segments.next().is_none() {
                        return false;
                    }
                }
                Part::Literal(lit) => {
                    if segments.next() != Some(lit.as_str()) {
                        return false;
                    }
                }
            }
        }
        segments.next().is_none()
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, topic: &str, expected: bool) {
        let p = TopicPattern::parse(pattern).unwrap();
        assert_eq!(p.matches(topic), expected, "{pattern} vs {topic}");
    }

    #[test]
    fn matching() {
        for (pattern, topic, expected) in [
            ("report.snapshot", "report.snapshot", true),
            ("report.snapshot", "report.hotline", false),
            ("report.*", "report.snapshot", true),
            ("report.*", "report", false),
            ("report.*", "report.snapshot.photo", false),
            ("report.>", "report.snapshot.photo", true),
            ("report.>", "report", false),
            ("*.reading.*", "iot.reading.water-level", true),
            (">", "anything.at.all", true),
            ("iot.reading.water-level", "iot.reading.water-level.x", false),
        ] {
            check(pattern, topic, expected);
        }
    }

    #[test]
    fn bad_patterns_name_the_problem() {
        for (text, expected) in [
            ("", TopicError::Empty),
            ("a..b", TopicError::EmptySegment("a..b".into())),
            ("a.>.b", TopicError::TailNotLast("a.>.b".into())),
            (
                "Report.x",
                TopicError::BadSegment { topic: "Report.x".into(), segment: "Report".into() },
            ),
            ("a.b*", TopicError::BadSegment { topic: "a.b*".into(), segment: "b*".into() }),
        ] {
            assert_eq!(TopicPattern::parse(text).unwrap_err(), expected);
        }
        assert_eq!(Topic::parse("a.*").unwrap_err(), TopicError::Wildcard("a.*".into()));
        assert!(matches!(Topic::parse(&"a".repeat(300)), Err(TopicError::TooLong(_))));
    }
}
