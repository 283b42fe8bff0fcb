//! A checked maintenance window and the questions a rollout asks of it.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

use super::opening::Opening;
use super::raw_window::RawWindow;
use super::weekday_set::WeekdaySet;
use crate::diag::Problem;
use crate::units::HumanDuration;
use crate::yaml::Path;

/// How many days [`Window::next_open`] looks ahead: a year (leap or not) plus a week, so a
/// window that opens at all is always found, even with a year's worth of exclusions.
const LOOKAHEAD_DAYS: usize = 366 + 7;

/// Time zone suggestions below this similarity would be noise rather than help.
const SUGGESTION_THRESHOLD: f64 = 0.75;

/// A window known to be well-formed, so the queries a rollout makes on every tick cannot
/// fail: each answer is a plain `bool` or instant.
#[derive(Debug, Clone)]
pub struct Window {
    tz: TimeZone,
    tz_name: String,
    days: WeekdaySet,
    start: Time,
    end: Time,
    exclude: BTreeSet<Date>,
    cutoff: Option<HumanDuration>,
}

impl Window {
    /// Checks every field and reports every mistake at once, each located relative to the
    /// window, so a user fixes a file in one round instead of one error per run.
    pub fn from_raw(raw: &RawWindow) -> Result<Window, Vec<Problem>> {
        let mut problems = Vec::new();

        let tz = match jiff::tz::db().get(&raw.timezone) {
            Ok(tz) => Some(tz),
            Err(_) => {
                problems.push(unknown_time_zone(&raw.timezone));
                None
            }
        };

        let mut days = WeekdaySet::default();
        if raw.days.is_empty() {
            problems.push(
                Problem::value(
                    Path::root().key("days"),
                    "`days` is empty: the window would never open",
                )
                .with_help("list the weekdays the window opens on, e.g. `[mon-fri]`"),
            );
        }
        for (i, entry) in raw.days.iter().enumerate() {
            match WeekdaySet::parse_entry(entry) {
                Ok(set) => days = days.union(set),
                Err(message) => problems.push(Problem::value(Path::root().key("days").index(i), message)),
            }
        }

        let start = parse_time(&raw.start, "start", &mut problems);
        let end = parse_time(&raw.end, "end", &mut problems);

        let mut exclude = BTreeSet::new();
        for (i, text) in raw.exclude.iter().enumerate() {
            match parse_date(text) {
                Ok(date) => {
                    exclude.insert(date);
                }
                Err(message) => problems.push(Problem::value(Path::root().key("exclude").index(i), message)),
            }
        }

        if let (Some(start), Some(end)) = (start, end) {
            if start == end {
                problems.push(
                    Problem::value(
                        Path::root().key("end"),
                        format!(
                            "`start` and `end` are both {}: the window would be empty",
                            hh_mm(start)
                        ),
                    )
                    .with_help("an `end` earlier than `start` runs over midnight, like 22:00-06:00"),
                );
            } else if let Some(cutoff) = raw.cutoff {
                let length = HumanDuration(nominal_length(start, end));
                if cutoff >= length {
                    problems.push(
                        Problem::value(
                            Path::root().key("cutoff"),
                            format!(
                                "cutoff `{cutoff}` is not shorter than the window, which lasts \
                                 {length} ({}-{})",
                                hh_mm(start),
                                hh_mm(end)
                            ),
                        )
                        .with_help(format!(
                            "no node could ever start; use a cutoff shorter than {length}"
                        )),
                    );
                }
            }
        }

        match (tz, start, end) {
            (Some(tz), Some(start), Some(end)) if problems.is_empty() => {
                let tz_name = tz.iana_name().unwrap_or(&raw.timezone).to_string();
                Ok(Window {
                    tz,
                    tz_name,
                    days,
                    start,
                    end,
                    exclude,
                    cutoff: raw.cutoff,
                })
            }
            _ => Err(problems),
        }
    }

    /// The zone the window is defined in, so callers can show instants on the clock the
    /// window's author had in mind.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// Whether `at` falls inside an opening: from its start (inclusive) to its end
    /// (exclusive), including an opening that began the previous evening.
    pub fn is_open(&self, at: Timestamp) -> bool {
        self.opening_at(at).is_some()
    }

    /// Whether a new node may be started at `at`: the window is open and at least `cutoff`
    /// remains. Starting exactly `cutoff` before the close is allowed, so a window of 9h with
    /// a cutoff of 30m accepts starts during its first 8h30m inclusive. The remaining time
    /// is real elapsed time, so it is right across a daylight saving change.
    pub fn may_start(&self, at: Timestamp) -> bool {
        let Some(opening) = self.opening_at(at) else {
            return false;
        };
        match self.cutoff {
            None => true,
            Some(cutoff) => opening
                .close
                .checked_sub(cutoff.get())
                .is_ok_and(|latest| at <= latest),
        }
    }

    /// The last instant of the opening containing `at` at which a new node may still
    /// start (its close less the cutoff), so a rollout knows when to look again; `None`
    /// when no node may start at `at`.
    pub fn last_start(&self, at: Timestamp) -> Option<Timestamp> {
        if !self.may_start(at) {
            return None;
        }
        let close = self.opening_at(at)?.close;
        Some(match self.cutoff {
            Some(cutoff) => close.checked_sub(cutoff.get()).unwrap_or(close),
            None => close,
        })
    }

    /// When the opening containing `at` ends, so a rollout can say how long it has left;
    /// `None` when the window is closed at `at`.
    pub fn current_close(&self, at: Timestamp) -> Option<Timestamp> {
        self.opening_at(at).map(|o| o.close)
    }

    /// The start of the first opening at or after `at`. Inside an opening this is the start
    /// of the following one, since the current one began before `at`; ask
    /// [`is_open`](Self::is_open) first to learn whether work can happen now. `None` only if
    /// the window does not open in the next year and a week, e.g. every day is excluded.
    pub fn next_open(&self, at: Timestamp) -> Option<Timestamp> {
        let today = self.tz.to_datetime(at).date();
        // Yesterday's opening cannot start at or after `at`, but stepping from there keeps
        // the loop free of special cases.
        let mut date = today.yesterday().unwrap_or(today);
        for _ in 0..=LOOKAHEAD_DAYS {
            if let Some(opening) = self.opening_on(date)
                && opening.open >= at
            {
                return Some(opening.open);
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// The opening containing `at`. Windows are shorter than a day, so only the openings of
    /// the local date of `at` and the day before can contain it.
    fn opening_at(&self, at: Timestamp) -> Option<Opening> {
        let today = self.tz.to_datetime(at).date();
        [today.yesterday().ok(), Some(today)]
            .into_iter()
            .flatten()
            .filter_map(|date| self.opening_on(date))
            .find(|opening| opening.contains(at))
    }

    /// The opening that starts on `date`, if the window opens that day.
    fn opening_on(&self, date: Date) -> Option<Opening> {
        if !self.days.contains(date.weekday()) || self.exclude.contains(&date) {
            return None;
        }
        Opening::on(&self.tz, date, self.start, self.end)
    }
}

/// The summary `drover plan` shows, short enough for one line next to a rollout's name.
impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}-{} {}",
            self.days,
            hh_mm(self.start),
            hh_mm(self.end),
            self.tz_name
        )?;
        if let Some(cutoff) = self.cutoff {
            write!(f, ", cutoff {cutoff}")?;
        }
        match self.exclude.len() {
            0 => Ok(()),
            1 => f.write_str(", 1 excluded date"),
            n => write!(f, ", {n} excluded dates"),
        }
    }
}

fn unknown_time_zone(name: &str) -> Problem {
    let problem = Problem::value(
        Path::root().key("timezone"),
        format!("unknown time zone `{name}`"),
    );
    match closest_time_zone(name) {
        Some(best) => problem.with_help(format!("did you mean `{best}`?")),
        None => problem.with_help("expected an IANA time zone name like `Europe/Berlin` or `UTC`"),
    }
}

/// The known zone name closest to `name`. A bare city (`Berlin`, `new york`) is compared with
/// the last part of each name too, since that is the part people remember.
fn closest_time_zone(name: &str) -> Option<String> {
    let wanted = name.trim().replace(' ', "_").to_ascii_lowercase();
    if wanted.is_empty() {
        return None;
    }
    let mut best: Option<(f64, String)> = None;
    for candidate in jiff::tz::db().available() {
        let full = candidate.as_str().to_ascii_lowercase();
        let mut score = strsim::normalized_levenshtein(&wanted, &full);
        if !wanted.contains('/')
            && let Some((_, city)) = full.rsplit_once('/')
        {
            score = score.max(strsim::normalized_levenshtein(&wanted, city));
        }
        let better = match &best {
            None => true,
            // Ties go to the alphabetically first name, whatever order the database lists.
            Some((s, b)) => score > *s || (score == *s && candidate.as_str() < b.as_str()),
        };
        if score >= SUGGESTION_THRESHOLD && better {
            best = Some((score, candidate.as_str().to_string()));
        }
    }
    best.map(|(_, name)| name)
}

/// Parses `HH:MM`, pushing a problem located at `field` when it is not a time of day.
/// A one-digit hour (`8:00`) is accepted since it cannot mean anything else.
fn parse_time(text: &str, field: &str, problems: &mut Vec<Problem>) -> Option<Time> {
    let parsed = text.split_once(':').and_then(|(h, m)| {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !(digits(h) && h.len() <= 2 && digits(m) && m.len() == 2) {
            return None;
        }
        let hour: i8 = h.parse().ok()?;
        let minute: i8 = m.parse().ok()?;
        Time::new(hour, minute, 0, 0).ok()
    });
    if parsed.is_none() {
        let mut problem = Problem::value(
            Path::root().key(field),
            format!("invalid time `{text}`: expected HH:MM between 00:00 and 23:59"),
        );
        if text == "24:00" {
            problem = problem
                .with_help("write `00:00` for midnight; an `end` earlier than `start` runs over midnight");
        }
        problems.push(problem);
    }
    parsed
}

/// Parses `YYYY-MM-DD`, telling apart a wrong format from a day the calendar does not have.
fn parse_date(text: &str) -> Result<Date, String> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    let fields = shaped
        .then(|| {
            Some((
                text.get(0..4)?.parse::<i16>().ok()?,
                text.get(5..7)?.parse::<i8>().ok()?,
                text.get(8..10)?.parse::<i8>().ok()?,
            ))
        })
        .flatten();
    let Some((year, month, day)) = fields else {
        return Err(format!("invalid date `{text}`: expected YYYY-MM-DD"));
    };
    let Ok(first_of_month) = Date::new(year, month, 1) else {
        return Err(format!("invalid date `{text}`: there is no month {month:02}"));
    };
    Date::new(year, month, day).map_err(|_| {
        format!(
            "invalid date `{text}`: {} {year} has {} days",
            first_of_month.strftime("%B"),
            first_of_month.days_in_month()
        )
    })
}

/// The window's length on a day without a clock change; `start != end`.
fn nominal_length(start: Time, end: Time) -> Duration {
    let minutes = |t: Time| i64::from(t.hour()) * 60 + i64::from(t.minute());
    let length = (minutes(end) - minutes(start)).rem_euclid(24 * 60);
    Duration::from_secs(length.unsigned_abs() * 60)
}

fn hh_mm(t: Time) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Target;
    use jiff::civil::DateTime;

    fn raw(days: &[&str], start: &str, end: &str) -> RawWindow {
        RawWindow {
            timezone: "Europe/Berlin".to_string(),
            days: days.iter().map(|d| d.to_string()).collect(),
            start: start.to_string(),
            end: end.to_string(),
            exclude: Vec::new(),
            cutoff: None,
        }
    }

    fn with_cutoff(mut raw: RawWindow, cutoff: &str) -> RawWindow {
        raw.cutoff = Some(HumanDuration::parse(cutoff).expect("test cutoff"));
        raw
    }

    fn with_exclude(mut raw: RawWindow, dates: &[&str]) -> RawWindow {
        raw.exclude = dates.iter().map(|d| d.to_string()).collect();
        raw
    }

    fn window(raw: RawWindow) -> Window {
        Window::from_raw(&raw).expect("test window is valid")
    }

    fn problems(raw: RawWindow) -> Vec<Problem> {
        Window::from_raw(&raw).err().unwrap_or_default()
    }

    /// Messages with their paths, for comparing whole problem lists in one assertion.
    fn messages(raw: RawWindow) -> Vec<(String, String)> {
        problems(raw)
            .into_iter()
            .map(|p| (p.path.to_string(), p.message))
            .collect()
    }

    /// A Berlin wall-clock time on a day without a clock change.
    fn berlin(s: &str) -> Timestamp {
        let dt: DateTime = s.parse().expect("test datetime");
        jiff::tz::db()
            .get("Europe/Berlin")
            .expect("Europe/Berlin is bundled")
            .to_ambiguous_timestamp(dt)
            .unambiguous()
            .expect("test time is not at a clock change")
    }

    fn utc(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    fn office_hours() -> Window {
        window(with_cutoff(raw(&["mon-fri"], "08:00", "17:00"), "30m"))
    }

    fn nights() -> Window {
        window(raw(&["mon-fri"], "22:00", "06:00"))
    }

    // ---- validation ----

    #[test]
    fn valid_window_summarises_on_one_line() {
        let w = window(with_exclude(
            with_cutoff(raw(&["mon-fri"], "08:00", "17:00"), "30m"),
            &["2026-12-24", "2026-12-31"],
        ));
        assert_eq!(
            w.to_string(),
            "mon-fri 08:00-17:00 Europe/Berlin, cutoff 30m, 2 excluded dates"
        );
    }

    #[test]
    fn summary_leaves_out_what_is_not_set() {
        let mut r = raw(&["Saturday", "SUN"], "22:00", "6:00");
        r.timezone = "UTC".to_string();
        assert_eq!(window(r).to_string(), "sat-sun 22:00-06:00 UTC");

        let w = window(with_exclude(
            raw(&["fri-mon"], "09:00", "17:00"),
            &["2026-12-24", "2026-12-24"],
        ));
        assert_eq!(
            w.to_string(),
            "fri-mon 09:00-17:00 Europe/Berlin, 1 excluded date"
        );
    }

    #[test]
    fn time_zone_name_is_matched_regardless_of_case_and_shown_canonically() {
        let mut r = raw(&["mon-fri"], "08:00", "17:00");
        r.timezone = "europe/berlin".to_string();
        assert_eq!(window(r).to_string(), "mon-fri 08:00-17:00 Europe/Berlin");
    }

    #[test]
    fn unknown_time_zone_suggests_the_closest_name() {
        let mut r = raw(&["mon"], "08:00", "17:00");
        r.timezone = "Europe/Berln".to_string();
        let p = problems(r);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].path, Path::root().key("timezone"));
        assert_eq!(p[0].target, Target::Value);
        assert_eq!(p[0].message, "unknown time zone `Europe/Berln`");
        assert_eq!(p[0].help.as_deref(), Some("did you mean `Europe/Berlin`?"));
    }

    #[test]
    fn bare_city_suggests_its_zone() {
        for (city, zone) in [("Berlin", "Europe/Berlin"), ("new york", "America/New_York")] {
            let mut r = raw(&["mon"], "08:00", "17:00");
            r.timezone = city.to_string();
            let p = problems(r);
            assert_eq!(p.len(), 1, "{city}");
            assert_eq!(p[0].message, format!("unknown time zone `{city}`"));
            assert_eq!(p[0].help, Some(format!("did you mean `{zone}`?")));
        }
    }

    #[test]
    fn unknown_time_zone_without_a_close_name_says_what_is_expected() {
        let mut r = raw(&["mon"], "08:00", "17:00");
        r.timezone = "somewhere nice".to_string();
        let p = problems(r);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].message, "unknown time zone `somewhere nice`");
        assert_eq!(
            p[0].help.as_deref(),
            Some("expected an IANA time zone name like `Europe/Berlin` or `UTC`")
        );
    }

    #[test]
    fn invalid_day_is_located_at_its_entry() {
        let p = problems(raw(
            &["mon", "tue", "funday", "sat-", "fri-mon"],
            "08:00",
            "17:00",
        ));
        let expected = |d: &str| {
            format!(
                "invalid day `{d}`: expected a weekday (`mon`..`sun` or `monday`..`sunday`) \
                 or a range like `mon-fri`"
            )
        };
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].path, Path::root().key("days").index(2));
        assert_eq!(p[0].message, expected("funday"));
        assert_eq!(p[1].path, Path::root().key("days").index(3));
        assert_eq!(p[1].message, expected("sat-"));
    }

    #[test]
    fn empty_days_is_an_error() {
        let p = problems(raw(&[], "08:00", "17:00"));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].path, Path::root().key("days"));
        assert_eq!(p[0].message, "`days` is empty: the window would never open");
        assert_eq!(
            p[0].help.as_deref(),
            Some("list the weekdays the window opens on, e.g. `[mon-fri]`")
        );
    }

    #[test]
    fn wrapping_day_range_covers_the_weekend() {
        let w = window(raw(&["fri-mon"], "09:00", "17:00"));
        assert!(w.is_open(berlin("2026-03-06T10:00"))); // Fri
        assert!(w.is_open(berlin("2026-03-07T10:00"))); // Sat
        assert!(w.is_open(berlin("2026-03-08T10:00"))); // Sun
        assert!(w.is_open(berlin("2026-03-09T10:00"))); // Mon
        assert!(!w.is_open(berlin("2026-03-10T10:00"))); // Tue
        assert!(!w.is_open(berlin("2026-03-05T10:00"))); // Thu
    }

    #[test]
    fn invalid_times_name_the_value_and_the_expected_form() {
        for bad in ["25:00", "12:60", "8am", "", "08:00:00", "08:5", "-1:00", "0800"] {
            let p = messages(raw(&["mon"], bad, "17:00"));
            assert_eq!(
                p,
                vec![(
                    "start".to_string(),
                    format!("invalid time `{bad}`: expected HH:MM between 00:00 and 23:59")
                )],
                "{bad:?}"
            );
        }
        let p = messages(raw(&["mon"], "08:00", "25:00"));
        assert_eq!(
            p,
            vec![(
                "end".to_string(),
                "invalid time `25:00`: expected HH:MM between 00:00 and 23:59".to_string()
            )]
        );
    }

    #[test]
    fn end_of_day_as_24_00_points_to_00_00() {
        let p = problems(raw(&["mon"], "18:00", "24:00"));
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0].message,
            "invalid time `24:00`: expected HH:MM between 00:00 and 23:59"
        );
        assert_eq!(
            p[0].help.as_deref(),
            Some("write `00:00` for midnight; an `end` earlier than `start` runs over midnight")
        );
        assert!(Window::from_raw(&raw(&["mon"], "18:00", "00:00")).is_ok());
    }

    #[test]
    fn start_equal_to_end_is_an_error() {
        let p = problems(raw(&["mon"], "8:00", "08:00"));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].path, Path::root().key("end"));
        assert_eq!(
            p[0].message,
            "`start` and `end` are both 08:00: the window would be empty"
        );
        assert_eq!(
            p[0].help.as_deref(),
            Some("an `end` earlier than `start` runs over midnight, like 22:00-06:00")
        );
    }

    #[test]
    fn invalid_dates_say_what_is_wrong() {
        let p = messages(with_exclude(
            raw(&["mon"], "08:00", "17:00"),
            &[
                "2026-12-24",
                "2026-02-30",
                "2028-02-30",
                "2026-13-01",
                "2026-04-00",
                "24.12.2026",
                "2026-2-3",
                "2026-12-24T00:00",
            ],
        ));
        let expected = [
            (1, "invalid date `2026-02-30`: February 2026 has 28 days"),
            (2, "invalid date `2028-02-30`: February 2028 has 29 days"),
            (3, "invalid date `2026-13-01`: there is no month 13"),
            (4, "invalid date `2026-04-00`: April 2026 has 30 days"),
            (5, "invalid date `24.12.2026`: expected YYYY-MM-DD"),
            (6, "invalid date `2026-2-3`: expected YYYY-MM-DD"),
            (7, "invalid date `2026-12-24T00:00`: expected YYYY-MM-DD"),
        ]
        .map(|(i, m)| (format!("exclude[{i}]"), m.to_string()));
        assert_eq!(p, expected.to_vec());
    }

    #[test]
    fn cutoff_must_be_shorter_than_the_window() {
        let p = problems(with_cutoff(raw(&["mon"], "08:00", "17:00"), "9h"));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].path, Path::root().key("cutoff"));
        assert_eq!(
            p[0].message,
            "cutoff `9h` is not shorter than the window, which lasts 9h (08:00-17:00)"
        );
        assert_eq!(
            p[0].help.as_deref(),
            Some("no node could ever start; use a cutoff shorter than 9h")
        );
        assert!(Window::from_raw(&with_cutoff(raw(&["mon"], "08:00", "17:00"), "8h59m")).is_ok());
    }

    #[test]
    fn cutoff_is_measured_against_an_overnight_window() {
        let p = messages(with_cutoff(raw(&["mon"], "22:00", "06:00"), "10h"));
        assert_eq!(
            p,
            vec![(
                "cutoff".to_string(),
                "cutoff `10h` is not shorter than the window, which lasts 8h (22:00-06:00)".to_string()
            )]
        );
        let ok = with_cutoff(raw(&["mon"], "22:00", "06:00"), "7h 59m");
        assert!(Window::from_raw(&ok).is_ok());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut r = with_cutoff(
            with_exclude(
                raw(&["mon", "tue", "someday"], "25:00", "17:00"),
                &["2026-02-30", "2026-12-24"],
            ),
            "24h",
        );
        r.timezone = "Europe/Berln".to_string();
        let paths: Vec<Path> = problems(r).into_iter().map(|p| p.path).collect();
        assert_eq!(
            paths,
            vec![
                Path::root().key("timezone"),
                Path::root().key("days").index(2),
                Path::root().key("start"),
                Path::root().key("exclude").index(0),
            ]
        );
    }

    #[test]
    fn yaml_shape_refuses_unknown_fields_and_defaults_the_optional_ones() {
        let parsed: Result<RawWindow, _> = serde_json::from_value(serde_json::json!({
            "timezone": "UTC", "days": ["mon"], "start": "08:00", "end": "17:00"
        }));
        let parsed = parsed.expect("minimal window deserializes");
        assert!(parsed.exclude.is_empty());
        assert_eq!(parsed.cutoff, None);

        let typo: Result<RawWindow, _> = serde_json::from_value(serde_json::json!({
            "timezone": "UTC", "days": ["mon"], "start": "08:00", "end": "17:00",
            "cutof": "30m"
        }));
        assert!(typo.is_err());
    }

    #[test]
    fn schema_describes_every_field_and_refuses_others() {
        let schema = serde_json::to_value(schemars::schema_for!(RawWindow)).expect("schema serializes");
        assert_eq!(schema["additionalProperties"], serde_json::json!(false));
        for field in ["timezone", "days", "start", "end", "exclude", "cutoff"] {
            let description = schema["properties"][field]["description"].as_str();
            assert!(
                description.is_some_and(|d| !d.is_empty()),
                "{field} has no description"
            );
        }
    }

    // ---- queries: a day window ----

    #[test]
    fn open_from_start_inclusive_to_end_exclusive() {
        let w = office_hours();
        assert!(!w.is_open(berlin("2026-03-02T07:59:59"))); // Mon
        assert!(w.is_open(berlin("2026-03-02T08:00")));
        assert!(w.is_open(berlin("2026-03-02T16:59:59")));
        assert!(!w.is_open(berlin("2026-03-02T17:00")));
        assert!(!w.is_open(berlin("2026-03-07T10:00"))); // Sat
    }

    #[test]
    fn current_close_is_the_end_of_the_current_opening() {
        let w = office_hours();
        assert_eq!(
            w.current_close(berlin("2026-03-02T12:00")),
            Some(berlin("2026-03-02T17:00"))
        );
        assert_eq!(w.current_close(berlin("2026-03-02T17:00")), None);
        assert_eq!(w.current_close(berlin("2026-03-07T12:00")), None);
    }

    #[test]
    fn starting_exactly_cutoff_before_close_is_allowed_one_second_later_is_not() {
        let w = office_hours();
        assert!(w.may_start(berlin("2026-03-02T08:00")));
        assert!(w.may_start(berlin("2026-03-02T16:30:00")));
        assert!(!w.may_start(berlin("2026-03-02T16:30:01")));
        assert!(w.is_open(berlin("2026-03-02T16:30:01")));
        assert!(!w.may_start(berlin("2026-03-02T07:59:59")));
        assert!(!w.may_start(berlin("2026-03-07T10:00")));
    }

    #[test]
    fn without_cutoff_any_open_moment_may_start() {
        let w = window(raw(&["mon-fri"], "08:00", "17:00"));
        assert!(w.may_start(berlin("2026-03-02T16:59:59")));
        assert!(!w.may_start(berlin("2026-03-02T17:00")));
    }

    #[test]
    fn next_open_before_the_start_is_the_same_day() {
        let w = office_hours();
        assert_eq!(
            w.next_open(berlin("2026-03-02T06:00")),
            Some(berlin("2026-03-02T08:00"))
        );
        assert_eq!(
            w.next_open(berlin("2026-03-02T08:00")),
            Some(berlin("2026-03-02T08:00"))
        );
    }

    #[test]
    fn next_open_from_inside_is_the_following_opening() {
        let w = office_hours();
        assert_eq!(
            w.next_open(berlin("2026-03-02T12:00")),
            Some(berlin("2026-03-03T08:00"))
        );
        assert_eq!(
            w.next_open(berlin("2026-03-06T12:00")), // Fri
            Some(berlin("2026-03-09T08:00"))
        );
    }

    #[test]
    fn next_open_skips_the_weekend() {
        let w = office_hours();
        assert_eq!(
            w.next_open(berlin("2026-03-06T18:00")),
            Some(berlin("2026-03-09T08:00"))
        );
        assert_eq!(
            w.next_open(berlin("2026-03-08T23:59")),
            Some(berlin("2026-03-09T08:00"))
        );
    }

    #[test]
    fn next_open_skips_an_excluded_date() {
        let w = window(with_exclude(raw(&["mon-fri"], "08:00", "17:00"), &["2026-03-09"]));
        assert!(!w.is_open(berlin("2026-03-09T10:00")));
        assert_eq!(
            w.next_open(berlin("2026-03-06T18:00")),
            Some(berlin("2026-03-10T08:00"))
        );
    }

    /// Every Monday from `first` up to and including `last`, as `YYYY-MM-DD`.
    fn mondays(first: Date, last: Date) -> Vec<String> {
        let mut out = Vec::new();
        let mut d = first;
        while d <= last {
            out.push(d.to_string());
            d = d.checked_add(jiff::Span::new().days(7)).expect("test date");
        }
        out
    }

    #[test]
    fn next_open_looks_past_a_year_of_exclusions() {
        use jiff::civil::date;
        let excluded = mondays(date(2026, 3, 2), date(2027, 2, 22));
        let excluded: Vec<&str> = excluded.iter().map(String::as_str).collect();
        let w = window(with_exclude(raw(&["mon"], "08:00", "17:00"), &excluded));
        assert_eq!(
            w.next_open(berlin("2026-03-01T12:00")),
            Some(berlin("2027-03-01T08:00"))
        );
    }

    #[test]
    fn next_open_is_none_when_every_opening_is_excluded() {
        use jiff::civil::date;
        let excluded = mondays(date(2026, 3, 2), date(2027, 3, 15));
        let excluded: Vec<&str> = excluded.iter().map(String::as_str).collect();
        let w = window(with_exclude(raw(&["mon"], "08:00", "17:00"), &excluded));
        assert_eq!(w.next_open(berlin("2026-03-01T12:00")), None);
    }

    // ---- queries: overnight windows ----

    #[test]
    fn overnight_window_runs_across_midnight() {
        let w = nights();
        assert!(!w.is_open(berlin("2026-03-02T21:59:59"))); // Mon
        assert!(w.is_open(berlin("2026-03-02T22:00")));
        assert!(w.is_open(berlin("2026-03-02T23:30")));
        assert!(w.is_open(berlin("2026-03-03T05:59:59")));
        assert!(!w.is_open(berlin("2026-03-03T06:00")));
        let close = Some(berlin("2026-03-03T06:00"));
        assert_eq!(w.current_close(berlin("2026-03-02T23:30")), close);
        assert_eq!(w.current_close(berlin("2026-03-03T03:00")), close);
    }

    #[test]
    fn overnight_window_weekday_is_the_day_it_opens() {
        let w = nights();
        // Friday night runs into Saturday morning ...
        assert!(w.is_open(berlin("2026-03-06T23:00")));
        assert!(w.is_open(berlin("2026-03-07T03:00")));
        assert_eq!(
            w.current_close(berlin("2026-03-07T03:00")),
            Some(berlin("2026-03-07T06:00"))
        );
        // ... but neither Saturday nor Sunday night opens, so Monday morning is shut.
        assert!(!w.is_open(berlin("2026-03-07T23:00")));
        assert!(!w.is_open(berlin("2026-03-08T23:00")));
        assert!(!w.is_open(berlin("2026-03-09T03:00")));
        assert!(w.is_open(berlin("2026-03-09T22:00")));
        assert_eq!(
            w.next_open(berlin("2026-03-07T07:00")),
            Some(berlin("2026-03-09T22:00"))
        );
    }

    #[test]
    fn excluded_date_is_the_date_an_overnight_window_opens() {
        // Thursday 2026-12-24 is excluded.
        let w = window(with_exclude(raw(&["mon-fri"], "22:00", "06:00"), &["2026-12-24"]));
        assert!(w.is_open(berlin("2026-12-23T23:00")));
        assert!(w.is_open(berlin("2026-12-24T03:00"))); // opened on the 23rd
        assert!(!w.is_open(berlin("2026-12-24T23:00")));
        assert!(!w.is_open(berlin("2026-12-25T03:00")));
        assert_eq!(
            w.next_open(berlin("2026-12-24T07:00")),
            Some(berlin("2026-12-25T22:00"))
        );
    }

    #[test]
    fn overnight_cutoff_counts_time_left_to_the_morning_close() {
        let w = window(with_cutoff(raw(&["mon-fri"], "22:00", "06:00"), "1h"));
        assert!(w.may_start(berlin("2026-03-03T05:00")));
        assert!(!w.may_start(berlin("2026-03-03T05:00:01")));
    }

    // ---- queries: daylight saving time (Europe/Berlin) ----

    #[test]
    fn start_in_the_spring_forward_gap_opens_when_the_clock_jumps() {
        // Sunday 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00 UTC; 02:30 never happens.
        let w = window(raw(&["sun"], "02:30", "05:00"));
        assert_eq!(
            w.next_open(utc("2026-03-28T12:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z")) // 03:00 CEST
        );
        assert!(!w.is_open(utc("2026-03-29T00:59:59Z")));
        assert!(w.is_open(utc("2026-03-29T01:00:00Z")));
        assert_eq!(
            w.current_close(utc("2026-03-29T01:00:00Z")),
            Some(utc("2026-03-29T03:00:00Z")) // 05:00 CEST
        );
    }

    #[test]
    fn spring_forward_shortens_the_window_and_cutoff_uses_real_time() {
        // 01:00 CET (00:00 UTC) to 05:00 CEST (03:00 UTC): three real hours, not four.
        let w = window(with_cutoff(raw(&["sun"], "01:00", "05:00"), "30m"));
        assert_eq!(
            w.current_close(utc("2026-03-29T00:00:00Z")),
            Some(utc("2026-03-29T03:00:00Z"))
        );
        assert!(w.may_start(utc("2026-03-29T02:30:00Z")));
        assert!(!w.may_start(utc("2026-03-29T02:30:01Z")));
    }

    #[test]
    fn overnight_window_over_spring_forward() {
        let w = window(raw(&["sat"], "22:00", "06:00"));
        assert_eq!(
            w.next_open(utc("2026-03-28T12:00:00Z")),
            Some(utc("2026-03-28T21:00:00Z")) // 22:00 CET
        );
        assert_eq!(
            w.current_close(utc("2026-03-28T23:00:00Z")),
            Some(utc("2026-03-29T04:00:00Z")) // 06:00 CEST
        );
    }

    #[test]
    fn repeated_start_on_fall_back_opens_at_its_first_occurrence() {
        // Sunday 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00 UTC, so 02:00-02:59
        // happens twice. The window opens at the first 02:30 and stays open through the
        // repeated hour until 04:00 CET.
        let w = window(raw(&["sun"], "02:30", "04:00"));
        assert_eq!(
            w.next_open(utc("2026-10-24T12:00:00Z")),
            Some(utc("2026-10-25T00:30:00Z")) // 02:30 CEST
        );
        assert!(!w.is_open(utc("2026-10-25T00:29:59Z")));
        assert!(w.is_open(utc("2026-10-25T01:15:00Z"))); // 02:15 CET, the second time round
        assert_eq!(
            w.current_close(utc("2026-10-25T01:15:00Z")),
            Some(utc("2026-10-25T03:00:00Z")) // 04:00 CET
        );
        assert!(!w.is_open(utc("2026-10-25T03:00:00Z")));
    }

    #[test]
    fn overnight_window_over_fall_back_lasts_an_hour_longer() {
        // 22:00 CEST (20:00 UTC) to 06:00 CET (05:00 UTC): nine real hours.
        let w = window(with_cutoff(raw(&["sat"], "22:00", "06:00"), "30m"));
        assert_eq!(
            w.next_open(utc("2026-10-24T12:00:00Z")),
            Some(utc("2026-10-24T20:00:00Z"))
        );
        assert_eq!(
            w.current_close(utc("2026-10-24T20:00:00Z")),
            Some(utc("2026-10-25T05:00:00Z"))
        );
        assert!(w.may_start(utc("2026-10-25T04:30:00Z")));
        assert!(!w.may_start(utc("2026-10-25T04:30:01Z")));
    }
}
