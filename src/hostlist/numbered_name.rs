//! A node name split around its last run of digits: `r1n05-ib` is `r1n` + `05` + `-ib`.

/// Only the last digit run varies within a compressed group, because that is the field
/// that counts nodes (`r1n05` is node 5 of rack 1); earlier digits belong to the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NumberedName<'a> {
    pub(super) prefix: &'a str,
    pub(super) digits: &'a str,
    pub(super) suffix: &'a str,
    pub(super) value: u64,
}

impl<'a> NumberedName<'a> {
    /// `None` for names with no digits, and for digit runs too long for a `u64`: both are
    /// shown as they are rather than folded into a range.
    pub(super) fn parse(name: &'a str) -> Option<Self> {
        let through_digits = name.trim_end_matches(|c: char| !c.is_ascii_digit());
        let suffix = name.strip_prefix(through_digits)?;
        let prefix = through_digits.trim_end_matches(|c: char| c.is_ascii_digit());
        let digits = through_digits.strip_prefix(prefix)?;
        let value = digits.parse::<u64>().ok()?;
        Some(Self {
            prefix,
            digits,
            suffix,
            value,
        })
    }

    /// A leading zero is the only proof of padding: `10` fits a width-2 group and an
    /// unpadded one equally well, but `09` only fits width 2.
    pub(super) fn padded_width(&self) -> Option<usize> {
        (self.digits.len() > 1 && self.digits.starts_with('0')).then_some(self.digits.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(name: &str) -> Option<(&str, &str, &str, u64)> {
        NumberedName::parse(name).map(|n| (n.prefix, n.digits, n.suffix, n.value))
    }

    #[test]
    fn splits_around_last_digit_run() {
        assert_eq!(parts("n005"), Some(("n", "005", "", 5)));
        assert_eq!(parts("r1n05-ib"), Some(("r1n", "05", "-ib", 5)));
        assert_eq!(parts("42"), Some(("", "42", "", 42)));
        assert_eq!(parts("é5ü"), Some(("é", "5", "ü", 5)));
    }

    #[test]
    fn names_without_usable_digits_are_not_numbered() {
        assert_eq!(parts("login"), None);
        assert_eq!(parts(""), None);
        assert_eq!(parts("n99999999999999999999999"), None);
    }

    #[test]
    fn padding_needs_a_leading_zero() {
        let width = |name| NumberedName::parse(name).and_then(|n| n.padded_width());
        assert_eq!(width("n007"), Some(3));
        assert_eq!(width("n10"), None);
        assert_eq!(width("n0"), None);
    }
}
