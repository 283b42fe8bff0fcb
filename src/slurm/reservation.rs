//! drover's maintenance reservations (`drain.mode: reservation`).

/// A reservation as `scontrol show reservation -o` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub name: String,
    /// A host list, as Slurm prints it.
    pub nodes: String,
    pub start: String,
    /// `ACTIVE` or `INACTIVE`.
    pub state: String,
}

impl Reservation {
    /// The name drover gives the reservation of `node` in run `run`: recognisably
    /// drover's and the run's in `scontrol show reservation`, and the same every time
    /// it is asked, so a controller resuming after a crash finds the reservation its
    /// predecessor made instead of making a second one.
    pub fn name_for(run: &str, node: &str) -> String {
        format!("{}{node}", Reservation::prefix(run))
    }

    /// What every reservation of run `run` is named with first.
    pub fn prefix(run: &str) -> String {
        format!("drover_{run}_")
    }

    /// Whether this is the reservation of one node of run `run` (its name is
    /// [`Reservation::name_for`] that node, and it holds that node alone).
    pub fn of_run(&self, run: &str) -> bool {
        self.name
            .strip_prefix(&Reservation::prefix(run))
            .is_some_and(|node| node == self.nodes)
    }
}

/// Parses `scontrol show reservation -o`: one `Key=Value ...` line per reservation
/// (`No reservations in the system` when there are none).
pub fn parse_reservations(text: &str) -> Vec<Reservation> {
    let mut out = Vec::new();
    for line in text.lines() {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_default()
                .to_string()
        };
        let name = field("ReservationName");
        if name.is_empty() {
            continue;
        }
        out.push(Reservation {
            name,
            nodes: field("Nodes"),
            start: field("StartTime"),
            state: field("State"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_of_a_run_by_name_and_node() {
        let text = "ReservationName=drover_20261202T050000Z-w-1234_node001 StartTime=2026-12-02T06:00:00 EndTime=Unknown Duration=UNLIMITED Nodes=node001 NodeCnt=1 Flags=MAINT,SPEC_NODES Users=root State=INACTIVE\n\
                    ReservationName=site_maint StartTime=2026-12-03T00:00:00 Nodes=node[001-004] State=INACTIVE\n\
                    ReservationName=drover_20261202T050000Z-w-1234_node002 StartTime=2026-12-02T05:00:00 Nodes=node003 State=ACTIVE\n";
        let r = parse_reservations(text);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].nodes, "node001");
        assert_eq!(r[0].start, "2026-12-02T06:00:00");
        assert_eq!(r[0].state, "INACTIVE");
        let run = "20261202T050000Z-w-1234";
        assert_eq!(Reservation::name_for(run, "node001"), r[0].name);
        assert!(r[0].of_run(run));
        assert!(!r[1].of_run(run), "not drover's");
        assert!(!r[2].of_run(run), "named for one node, holding another");
        assert!(!r[0].of_run("20261202T050000Z-w-123"), "another run's");
        assert!(parse_reservations("No reservations in the system\n").is_empty());
    }
}
