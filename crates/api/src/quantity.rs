//! Resource quantities (`100m`, `64Mi`, `1.5`, `2k`, `1e3`): parsing into
//! exact milli-units and canonical formatting, as `resource.Quantity` does.

/// Why a quantity string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantity {input:?}: {reason}")]
    Invalid { input: String, reason: &'static str },
    #[error("quantity {input:?} is out of range")]
    OutOfRange { input: String },
}

/// A parsed quantity: an exact number of milli-units and the suffix family
/// it was written in (kept for formatting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl Quantity {
    /// Parses a quantity string.
    pub fn parse(input: &str) -> Result<Self, QuantityError> {
        Err(QuantityError::Invalid {
            input: input.to_string(),
            reason: "not implemented",
        })
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
}
