//! Webhook type patterns: `*` (every type), `a.*` (every type under `a.`, at any depth),
//! or an exact type name.

use std::fmt;

use super::event_type::check_type_text;
use super::EventType;

#[derive(Clone, PartialEq, Eq, Hash)]
pub enum TypePattern {
    /// `*`
    All,
    /// `a.b.*`, stored as the prefix with its trailing dot: `a.b.`.
    Prefix(String),
    /// An exact event type.
    Exact(String),
}

impl TypePattern {
    /// Parses a pattern or says which rule it broke. `*` may only stand alone or as the last
    /// segment after a dot.
    pub fn parse(text: &str) -> Result<TypePattern, String> {
        check_type_text(text)?;
        if text == "*" {
            return Ok(TypePattern::All);
        }
        match text.strip_suffix(".*") {
            Some(prefix) if !prefix.is_empty() && !prefix.contains('*') => {
                Ok(TypePattern::Prefix(format!("{prefix}.")))
            }
            Some(_) => Err("'*' may only be the whole pattern or its last segment, as in user.*".into()),
            None if text.contains('*') => {
                Err("'*' may only be the whole pattern or its last segment, as in user.*".into())
            }
            None => Ok(TypePattern::Exact(text.to_string())),
        }
    }

    pub fn matches(&self, event: &EventType) -> bool {
        let ev = event.as_str();
        match self {
            TypePattern::All => true,
            TypePattern::Prefix(prefix) => ev.len() > prefix.len() && ev.starts_with(prefix.as_str()),
            TypePattern::Exact(exact) => ev == exact,
        }
    }

    /// The pattern texts that match `event`: `*`, every `a.*` prefix of it and itself.
    /// Used to look an event up in indexes keyed by pattern text.
    pub fn candidates_for(event: &EventType) -> impl Iterator<Item = String> + '_ {
        let ev = event.as_str();
        let prefixes = ev
            .char_indices()
            .filter(move |&(i, c)| c == '.' && i + 1 < ev.len())
            .map(move |(i, _)| format!("{}*", &ev[..=i]));
        std::iter::once("*".to_string())
            .chain(prefixes)
            .chain(std::iter::once(ev.to_string()))
    }
}

impl fmt::Display for TypePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypePattern::All => f.write_str("*"),
            TypePattern::Prefix(prefix) => write!(f, "{prefix}*"),
            TypePattern::Exact(exact) => f.write_str(exact),
        }
    }
}

impl fmt::Debug for TypePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TypePattern({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, ev: &str) -> bool {
        TypePattern::parse(pattern)
            .unwrap()
            .matches(&EventType::parse(ev).unwrap())
    }

    #[test]
    fn star_matches_everything() {
        assert!(matches("*", "user.created"));
        assert!(matches("*", "forward added"));
    }

    #[test]
    fn prefix_matches_any_depth_below_but_not_itself() {
        assert!(matches("user.*", "user.created"));
        assert!(matches("user.*", "user.delete.started"));
        assert!(!matches("user.*", "user"));
        assert!(!matches("user.*", "users.created"));
        assert!(matches("user.delete.*", "user.delete.started"));
        assert!(matches("user.delete.*", "user.delete.a.b"));
        assert!(!matches("user.delete.*", "user.delete"));
        assert!(!matches("user.delete.*", "user.created"));
    }

    #[test]
    fn exact_matches_only_itself() {
        assert!(matches("marked.spam", "marked.spam"));
        assert!(!matches("marked.spam", "marked.ham"));
        assert!(!matches("marked", "marked.spam"));
    }

    #[test]
    fn misplaced_stars_are_refused() {
        for bad in ["a*", "*.a", "a.*.b", "**", ".*", "a.**"] {
            assert!(TypePattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn candidates_are_exactly_the_patterns_that_match() {
        let ev = EventType::parse("user.delete.started").unwrap();
        let got: Vec<String> = TypePattern::candidates_for(&ev).collect();
        assert_eq!(got, ["*", "user.*", "user.delete.*", "user.delete.started"]);
        for candidate in &got {
            assert!(TypePattern::parse(candidate).unwrap().matches(&ev));
        }
    }

    #[test]
    fn display_round_trips() {
        for text in ["*", "user.*", "user.delete.*", "marked.spam"] {
            assert_eq!(TypePattern::parse(text).unwrap().to_string(), text);
        }
    }
}
