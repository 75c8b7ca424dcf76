//! Numbers as WildDuck's JavaScript reads and writes them.
//!
//! Two readings matter for answering like WildDuck: how Joi's `number()` converts a query
//! value (`limit`, `page`) and how JavaScript's `Number()` converts a string from Redis (the
//! fields of a WildDuck access token). And one writing: `JSON.stringify` of a number, which a
//! token's signature covers and the list echoes (`page`).

use std::fmt;

use serde::{Serialize, Serializer};

/// The largest integer a JavaScript number holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Joi's `number()` on a string: an optionally signed decimal with an optional fraction and
/// exponent, surrounded by optional whitespace, within the safe integer range. None when Joi
/// refuses it (`"" `, `"abc"`, `"0x10"`, `"Infinity"`, `"1e400"`).
pub fn joi_number(text: &str) -> Option<f64> {
    let trimmed = text.trim();
    let body = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !mantissa_ok || !exponent_ok {
        return None;
    }
    let value: f64 = trimmed.parse().ok()?;
    (value.abs() <= MAX_SAFE_INTEGER).then_some(if value == 0.0 { 0.0 } else { value })
}

/// JavaScript's `Number(string)`: NaN when it is not a number; `""` and whitespace are 0.
pub fn js_number(text: &str) -> f64 {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return 0.0;
    }
    let radix = |prefix: [&str; 2], radix| {
        prefix
            .iter()
            .find_map(|p| trimmed.strip_prefix(p))
            .map(|digits| u64::from_str_radix(digits, radix).map_or(f64::NAN, |n| n as f64))
    };
    if let Some(n) = radix(["0x", "0X"], 16)
        .or_else(|| radix(["0o", "0O"], 8))
        .or_else(|| radix(["0b", "0B"], 2))
    {
        return n;
    }
    match trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed) {
        "Infinity" if trimmed.starts_with('-') => return f64::NEG_INFINITY,
        "Infinity" => return f64::INFINITY,
        _ => {}
    }
    // What is left must be a decimal as Joi reads one, without its range limit.
    let decimal = trimmed.bytes().all(|b| b.is_ascii_digit() || b".+-eE".contains(&b));
    match (decimal, trimmed.parse::<f64>()) {
        (true, Ok(n)) => n,
        _ => f64::NAN,
    }
}

/// A number written as JavaScript writes it: integers without a fraction (`2`, not `2.0`),
/// non-finite numbers as `null` in JSON. Fractions use Rust's shortest round-trip form, which
/// is JavaScript's too for the values met here (no exponents below 1e21).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JsNumber(pub f64);

impl JsNumber {
    fn integer(self) -> Option<i64> {
        (self.0.fract() == 0.0 && self.0.abs() <= MAX_SAFE_INTEGER).then_some(self.0 as i64)
    }
}

impl fmt::Display for JsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.integer() {
            Some(n) => write!(f, "{n}"),
            None if !self.0.is_finite() => f.write_str("null"),
            None => write!(f, "{}", self.0),
        }
    }
}

impl Serialize for JsNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.integer() {
            Some(n) => serializer.serialize_i64(n),
            None if !self.0.is_finite() => serializer.serialize_none(),
            None => serializer.serialize_f64(self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joi_reads_decimals_only() {
        for (text, value) in [
            ("20", 20.0),
            (" 2 ", 2.0),
            ("2.5", 2.5),
            ("1e2", 100.0),
            ("-3", -3.0),
            ("0", 0.0),
            (".5", 0.5),
        ] {
            assert_eq!(joi_number(text), Some(value), "{text}");
        }
        for text in [
            "",
            " ",
            "abc",
            "0x10",
            "Infinity",
            "1e400",
            "1.2.3",
            "e5",
            "9007199254740993",
        ] {
            assert_eq!(joi_number(text), None, "{text}");
        }
    }

    #[test]
    fn js_number_is_javascripts_number() {
        assert_eq!(js_number("3"), 3.0);
        assert_eq!(js_number(" 12 "), 12.0);
        assert_eq!(js_number(""), 0.0);
        assert_eq!(js_number("0x10"), 16.0);
        assert_eq!(js_number("-Infinity"), f64::NEG_INFINITY);
        assert!(js_number("12abc").is_nan());
        assert!(js_number("inf").is_nan());
        assert_eq!(js_number("1209600"), 1_209_600.0);
    }

    #[test]
    fn numbers_are_written_as_javascript_writes_them() {
        assert_eq!(JsNumber(2.0).to_string(), "2");
        assert_eq!(JsNumber(-0.0).to_string(), "0");
        assert_eq!(JsNumber(2.5).to_string(), "2.5");
        assert_eq!(JsNumber(f64::INFINITY).to_string(), "null");
        assert_eq!(serde_json::to_string(&JsNumber(3.0)).unwrap(), "3");
        assert_eq!(serde_json::to_string(&JsNumber(0.25)).unwrap(), "0.25");
    }
}
