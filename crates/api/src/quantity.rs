//! Resource quantities (`100m`, `64Mi`, `1.5`, `2k`, `1e3`): parsing into
//! exact milli-units and canonical formatting, as `resource.Quantity` does.
//!
//! The grammar is upstream's: an optionally signed decimal number followed
//! by a binary-SI suffix (`Ki`…`Ei`), a decimal-SI suffix (`n u m "" k M G T
//! P E`) or a decimal exponent (`e3`, `E-2`). Values are kept as an exact
//! count of milli-units (rounded up below one milli, as `MilliValue` does).

use std::fmt;

/// Why a quantity string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantity {input:?}: {reason}")]
    Invalid { input: String, reason: &'static str },
    #[error("quantity {input:?} is out of range")]
    OutOfRange { input: String },
}

/// A parsed quantity: an exact number of milli-units and the suffix family
/// it was written in (kept for formatting). Equality and order compare
/// values only.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    milli: i128,
    format: Format,
}

/// The suffix family a quantity was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Powers of 1024: Ki, Mi, Gi, Ti, Pi, Ei.
    BinarySi,
    /// Powers of 1000: n, u, m, "", k, M, G, T, P, E.
    DecimalSi,
    /// `e`/`E` exponents: 1e3.
    DecimalExponent,
}

/// Largest magnitude accepted, in milli-units (far beyond any real resource).
const MAX_MILLI: i128 = 10i128.pow(33);

impl Quantity {
    /// Parses a quantity string.
    pub fn parse(input: &str) -> Result<Self, QuantityError> {
        let invalid = |reason| QuantityError::Invalid {
            input: input.to_string(),
            reason,
        };
        let split = input
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
            .unwrap_or(input.len());
        let (number, suffix) = input.split_at(split);
        let (negative, digits) = match number.as_bytes().first() {
            Some(b'-') => (true, &number[1..]),
            Some(b'+') => (false, &number[1..]),
            Some(_) => (false, number),
            None => return Err(invalid("no number")),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && frac.is_empty()) || !all_digits(whole) || !all_digits(frac) {
            return Err(invalid("malformed number"));
        }
        let (format, pow10, pow1024) =
            parse_suffix(suffix).ok_or_else(|| invalid("unknown suffix"))?;
        let milli = scale(whole, frac, pow10 + 3, pow1024).ok_or(QuantityError::OutOfRange {
            input: input.to_string(),
        })?;
        Ok(Self {
            milli: if negative { -milli } else { milli },
            format,
        })
    }

    /// A quantity of `milli` milli-units in the given format.
    pub fn from_milli(milli: i128, format: Format) -> Self {
        Self { milli, format }
    }

    /// The value in milli-units (`100m` → 100, `1` → 1000), rounded up.
    pub fn milli_value(&self) -> i128 {
        self.milli
    }

    /// The value in whole units (`64Mi` → 67108864), rounded up.
    pub fn value(&self) -> i128 {
        self.milli.div_euclid(1000) + i128::from(self.milli.rem_euclid(1000) != 0)
    }

    /// The suffix family the quantity was written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Reads a quantity from JSON, where it may be a string (`"64Mi"`) or,
    /// as upstream accepts, a number (`1`, `0.5`).
    pub fn from_json(value: &serde_json::Value) -> Result<Self, QuantityError> {
        match value {
            serde_json::Value::String(s) => Self::parse(s),
            serde_json::Value::Number(n) => Self::parse(&n.to_string()),
            other => Err(QuantityError::Invalid {
                input: other.to_string(),
                reason: "must be a string or a number",
            }),
        }
    }

    /// The sum, in the left operand's format; `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        let milli = self.milli.checked_add(other.milli)?;
        (milli.abs() <= MAX_MILLI).then_some(Self { milli, ..self })
    }

    /// The difference, in the left operand's format; `None` on overflow.
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        let milli = self.milli.checked_sub(other.milli)?;
        (milli.abs() <= MAX_MILLI).then_some(Self { milli, ..self })
    }

    /// Whether the quantity is zero.
    pub fn is_zero(&self) -> bool {
        self.milli == 0
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.milli == other.milli
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    /// Compares values; the format does not matter (`1Gi` > `1G`).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.milli.cmp(&other.milli)
    }
}

/// Maps a suffix to (format, power of ten, power of 1024).
fn parse_suffix(suffix: &str) -> Option<(Format, i32, u32)> {
    let decimal = |p| Some((Format::DecimalSi, p, 0));
    let binary = |p| Some((Format::BinarySi, 0, p));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        s if s.starts_with(['e', 'E']) => {
            let exp = &s[1..];
            let body = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if body.is_empty() || body.len() > 3 || !body.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((Format::DecimalExponent, exp.parse().ok()?, 0))
        }
        _ => None,
    }
}

/// Computes ceil(whole.frac × 10^pow10 × 1024^pow1024) exactly.
fn scale(whole: &str, frac: &str, pow10: i32, pow1024: u32) -> Option<i128> {
    let frac = frac.trim_end_matches('0');
    let whole = whole.trim_start_matches('0');
    if whole.len() + frac.len() > 36 {
        return None;
    }
    let mantissa: i128 = format!("0{whole}{frac}").parse().ok()?;
    let mut exp10 = pow10 - i32::try_from(frac.len()).ok()?;
    let mut value = mantissa.checked_mul(1024i128.checked_pow(pow1024)?)?;
    while exp10 > 0 {
        value = value.checked_mul(10)?;
        exp10 -= 1;
        if value > MAX_MILLI {
            return None;
        }
    }
    if exp10 < 0 {
        let div = 10i128.checked_pow(exp10.unsigned_abs())?;
        value = value / div + i128::from(value % div != 0);
    }
    (value <= MAX_MILLI).then_some(value)
}

impl fmt::Display for Quantity {
    /// Canonical form: the largest suffix that keeps the number whole.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.milli < 0 { "-" } else { "" };
        let milli = self.milli.unsigned_abs();
        if milli == 0 {
            return f.write_str("0");
        }
        if self.format == Format::BinarySi && milli % 1000 == 0 {
            let mut units = milli / 1000;
            let suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
            let mut i = 0;
            while i + 1 < suffixes.len() && units % 1024 == 0 {
                units /= 1024;
                i += 1;
            }
            if i > 0 || units < 1024 {
                return write!(f, "{sign}{units}{}", suffixes[i]);
            }
        }
        if milli % 1000 != 0 {
            return write!(f, "{sign}{milli}m");
        }
        let mut units = milli / 1000;
        let suffixes = ["", "k", "M", "G", "T", "P", "E"];
        let mut i = 0;
        while i + 1 < suffixes.len() && units % 1000 == 0 {
            units /= 1000;
            i += 1;
        }
        write!(f, "{sign}{units}{}", suffixes[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn milli(s: &str) -> i128 {
        Quantity::parse(s).unwrap().milli_value()
    }

    #[test]
    fn parses_cpu_and_memory_forms() {
        assert_eq!(milli("100m"), 100);
        assert_eq!(milli("1.5"), 1500);
        assert_eq!(milli("2"), 2000);
        assert_eq!(milli("0.1"), 100);
        assert_eq!(milli("2k"), 2_000_000);
        assert_eq!(Quantity::parse("64Mi").unwrap().value(), 64 * 1024 * 1024);
        assert_eq!(Quantity::parse("1Gi").unwrap().value(), 1 << 30);
        assert_eq!(Quantity::parse("1.5Gi").unwrap().value(), 3 << 29);
        assert_eq!(Quantity::parse("1e3").unwrap().value(), 1000);
        assert_eq!(Quantity::parse("1E-3").unwrap().milli_value(), 1);
        assert_eq!(Quantity::parse("128974848").unwrap().value(), 128_974_848);
        assert_eq!(Quantity::parse("129M").unwrap().value(), 129_000_000);
        assert_eq!(milli("-5"), -5000);
        assert_eq!(milli("+5"), 5000);
        assert_eq!(milli(".5"), 500);
    }

    #[test]
    fn sub_milli_values_round_up() {
        assert_eq!(milli("1n"), 1);
        assert_eq!(milli("1500u"), 2);
        assert_eq!(Quantity::parse("100m").unwrap().value(), 1);
    }

    #[test]
    fn rejects_malformed_quantities_naming_them() {
        for bad in [
            "", "Mi", "1.2.3", "1x", "1 Mi", "1mi", "--1", "1e", "abc", "1e1000",
        ] {
            let err = Quantity::parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        assert!(matches!(
            Quantity::parse("99999999999999999999999999999999999999E"),
            Err(QuantityError::OutOfRange { .. })
        ));
    }

    #[test]
    fn arithmetic_and_order_for_scheduling() {
        let q = |s: &str| Quantity::parse(s).unwrap();
        assert!(q("1Gi") > q("1G"));
        assert_eq!(q("1000m"), q("1"));
        assert_eq!(q("500m").checked_add(q("1.5")).unwrap().to_string(), "2");
        assert_eq!(
            q("1Gi").checked_sub(q("512Mi")).unwrap().to_string(),
            "512Mi"
        );
        assert!(q("100m").checked_sub(q("100m")).unwrap().is_zero());
        let max = Quantity::from_milli(MAX_MILLI, Format::DecimalSi);
        assert_eq!(max.checked_add(q("1")), None);
        assert_eq!(Quantity::from_json(&serde_json::json!(1)).unwrap(), q("1"));
        assert_eq!(
            Quantity::from_json(&serde_json::json!(0.5)).unwrap(),
            q("500m")
        );
        assert_eq!(
            Quantity::from_json(&serde_json::json!("64Mi")).unwrap(),
            q("64Mi")
        );
        assert!(Quantity::from_json(&serde_json::json!(true)).is_err());
    }

    #[test]
    fn formats_canonically() {
        let show = |s: &str| Quantity::parse(s).unwrap().to_string();
        assert_eq!(show("1000m"), "1");
        assert_eq!(show("1.5"), "1500m");
        assert_eq!(show("1024Mi"), "1Gi");
        assert_eq!(show("1536Mi"), "1536Mi");
        assert_eq!(show("2000"), "2k");
        assert_eq!(show("0.5Gi"), "512Mi");
        assert_eq!(show("0"), "0");
        assert_eq!(show("-100m"), "-100m");
    }
}
