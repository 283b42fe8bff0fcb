//! Counts in human output: "1 node", "2 nodes".

/// `n` and the noun, in the singular for one. Nouns whose plural is not `-s` are not
/// needed (yet).
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular() {
        assert_eq!(plural(0, "node"), "0 nodes");
        assert_eq!(plural(1, "node"), "1 node");
        assert_eq!(plural(2, "node"), "2 nodes");
    }
}
