//! Whether a workflow's window is open now, and when that changes, for the plan: so a
//! dry run predicts the refusal a real run would get.

use jiff::Timestamp;

use crate::window::Window;

/// `open now; closes 2026-12-01 17:00 CET`, `closed now; opens 2026-12-02 08:00 CET`,
/// or, past the cutoff, that no new node starts. Times are on the window's own clock.
pub fn window_status(w: &Window, now: Timestamp) -> String {
    let at = |t: Timestamp| {
        t.to_zoned(w.time_zone().clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string()
    };
    let next = w.next_open(now).map_or_else(
        || "it does not open in the next year".to_string(),
        |t| format!("opens {}", at(t)),
    );
    match w.current_close(now) {
        Some(close) if w.may_start(now) => format!("open now; closes {}", at(close)),
        Some(close) => format!(
            "open now but past its cutoff: no new node starts; closes {}, {next}",
            at(close)
        ),
        None => format!("closed now; {next}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::RawWindow;

    fn window(yaml_cutoff: Option<&str>) -> Window {
        let raw: RawWindow = serde_json::from_value(serde_json::json!({
            "timezone": "Europe/Berlin",
            "days": ["mon-fri"],
            "start": "08:00",
            "end": "17:00",
            "cutoff": yaml_cutoff,
        }))
        .unwrap();
        Window::from_raw(&raw).unwrap()
    }

    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn open_closed_and_past_the_cutoff() {
        // 2026-03-02 is a Monday; Berlin is UTC+1 then.
        let w = window(Some("1h"));
        assert_eq!(
            window_status(&w, utc("2026-03-02T10:00:00Z")),
            "open now; closes 2026-03-02 17:00 CET"
        );
        assert_eq!(
            window_status(&w, utc("2026-03-02T15:30:00Z")),
            "open now but past its cutoff: no new node starts; closes 2026-03-02 17:00 CET, opens 2026-03-03 08:00 CET"
        );
        assert_eq!(
            window_status(&w, utc("2026-03-06T18:00:00Z")),
            "closed now; opens 2026-03-09 08:00 CET"
        );
    }
}
