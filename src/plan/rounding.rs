//! How a budget written as a percentage became a count, for the plan to show.

use crate::units::Amount;

/// A disruption budget's share of `total`, rounded **down** (a budget of "5%" never
/// allows more than 5% down), and at least one node, or the rollout could never take a
/// node down. With a percentage, also how it was rounded: `5% of 128 = 6.4 → 6`.
pub fn budget_share(amount: Amount, total: usize) -> (usize, Option<String>) {
    let n = amount.of_floor(total).max(1);
    let why = match amount {
        Amount::Count(_) => None,
        Amount::Percent(p) => {
            let exact = p / 100.0 * total as f64;
            let floor = amount.of_floor(total);
            let mut s = format!("{} of {total} = {} → {floor}", pct(p), trim(exact));
            if floor < n {
                s.push_str(", at least 1");
            }
            Some(s)
        }
    };
    (n, why)
}

fn pct(p: f64) -> String {
    format!("{}%", trim(p))
}

/// `6.4`, `6`, `0.35`: at most two decimals, no trailing zeros.
fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_down_and_say_how() {
        assert_eq!(
            budget_share(Amount::Percent(5.0), 128),
            (6, Some("5% of 128 = 6.4 → 6".into()))
        );
        assert_eq!(
            budget_share(Amount::Percent(10.0), 5),
            (1, Some("10% of 5 = 0.5 → 0, at least 1".into()))
        );
        assert_eq!(
            budget_share(Amount::Percent(25.0), 12),
            (3, Some("25% of 12 = 3 → 3".into()))
        );
        assert_eq!(budget_share(Amount::Count(2), 128), (2, None));
        assert_eq!(budget_share(Amount::Count(0), 128), (1, None));
    }
}
