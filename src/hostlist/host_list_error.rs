//! Everything that can be wrong with a host list pattern.

/// Each mistake gets its own variant so callers can match on it, and each message quotes the
/// offending text: a rollout that refuses to start must say exactly which part of a long
/// pattern to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostListError {
    #[error("empty host list: expected one or more host names, as in `n[001-004]`")]
    Empty,

    #[error("empty entry in host list `{pattern}`: expected a host name between commas")]
    EmptyEntry { pattern: String },

    #[error("unclosed `[` in host list `{entry}`: expected a `]` to end the range list")]
    UnclosedBracket { entry: String },

    #[error("stray `]` in host list `{entry}`: expected it to close an earlier `[`")]
    StrayBracket { entry: String },

    #[error(
        "nested `[` in host list `{entry}`: expected each `[` to be closed before the next one \
         opens, as in `r[1-2]n[1-4]`"
    )]
    NestedBracket { entry: String },

    #[error("empty brackets in host list `{entry}`: expected numbers or ranges inside, as in `n[1-4]`")]
    EmptyBrackets { entry: String },

    #[error(
        "empty range item in host list `{entry}`: expected a number or range between commas, \
         as in `n[1-4,7]`"
    )]
    EmptyRange { entry: String },

    #[error(
        "incomplete range `{range}` in host list `{entry}`: expected a number on each side of \
         `-`, as in `1-4`"
    )]
    IncompleteRange { entry: String, range: String },

    #[error(
        "non-numeric range bound `{bound}` in host list `{entry}`: expected decimal digits, \
         as in `n[1-4]`"
    )]
    NonNumericBound { entry: String, bound: String },

    #[error(
        "range bound `{bound}` in host list `{entry}` is too large: expected at most {max}",
        max = u64::MAX
    )]
    BoundTooLarge { entry: String, bound: String },

    #[error(
        "reversed range `{start}-{end}` in host list `{entry}`: expected the start to be no \
         greater than the end, as in `{end}-{start}`"
    )]
    ReversedRange {
        entry: String,
        start: String,
        end: String,
    },

    #[error("host list `{pattern}` expands to {count} names: expected at most {limit}")]
    TooLarge {
        pattern: String,
        count: u64,
        limit: usize,
    },
}
