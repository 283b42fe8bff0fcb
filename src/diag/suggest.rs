//! "Did you mean" suggestions for misspelt keys and names.

/// The candidate closest to `input`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = input.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn suggests_close_names_only() {
        let keys = ["name", "version", "strategy", "steps"];
        assert_eq!(did_you_mean("stratgy", keys), Some("strategy"));
        assert_eq!(did_you_mean("Versoin", keys), Some("version"));
        assert_eq!(did_you_mean("banana", keys), None);
    }
}
