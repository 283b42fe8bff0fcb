//! SSH settings in drover's own config instead of an ssh_config file: per-node
//! `identity_file` and `known_hosts`, the `accept-new` host key policy and the negotiated key
//! exchange, against real sshds.

use drover::exit_code;

use super::bed::{Bed, node, workflow};

const MARK: &str = "- name: mark\n  run: touch {{ node.vars.state }}/done\n  check: test -e {{ node.vars.state }}/done\n  change: hot\n";

/// No `config:` at all: the inventory gives each node its key and known_hosts.
fn direct_site(bed: &Bed, ssh: &str, known_hosts: bool) {
    bed.site_yaml(&format!("connect_timeout: 15s{ssh}"), "");
    bed.write("inventory.yml", &bed.tb.inventory_yaml_direct(known_hosts));
    bed.write(
        "workflows/w.yml",
        &workflow("strategy: { batch: [\"100%\"] }\n", MARK),
    );
}

#[test]
fn nodes_are_reached_with_per_node_identity_and_known_hosts_and_no_ssh_config() {
    let bed = Bed::start(2, false);
    direct_site(&bed, "", true);
    let out = bed.drover(&["run", "w", "--yes", "--json"]);
    out.expect(exit_code::OK);
    assert!(bed.has(0, "done") && bed.has(1, "done"), "{out}");
}

#[test]
fn accept_new_records_a_key_once_and_refuses_a_changed_one() {
    let mut bed = Bed::start(1, false);
    // No known_hosts for the node anywhere: strict refuses it.
    direct_site(&bed, "", false);
    let out = bed.drover(&["check", "w", "--json"]);
    assert!(!out.stdout.contains("\"class\":\"DRAIN\""), "{out}");
    assert!(
        out.stdout.contains("not trusted") || out.stdout.contains("ost key"),
        "{out}"
    );
    let recorded = bed.site.path().join(".drover").join("known_hosts");
    assert!(!recorded.exists(), "strict recorded a key");

    direct_site(&bed, ", host_key_policy: accept-new", false);
    let out = bed.drover(&["run", "w", "--yes", "--json"]);
    out.expect(exit_code::OK);
    let keys = std::fs::read_to_string(&recorded).expect("the key was recorded");
    assert_eq!(keys.lines().count(), 1, "{keys}");
    // Recorded once: a second contact adds nothing.
    let out = bed.drover(&["check", "w", "--json"]);
    out.expect(exit_code::OK);
    assert_eq!(std::fs::read_to_string(&recorded).expect("known_hosts"), keys);

    bed.tb.replace_host_key(0).expect("new host key");
    let out = bed.drover(&["check", "w", "--json"]);
    assert!(
        out.stdout.contains("host key"),
        "a changed key was accepted\n{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&recorded).expect("known_hosts"),
        keys,
        "the new key was recorded"
    );
    let _ = node(0);
}

#[test]
fn check_verbose_shows_the_negotiated_key_exchange() {
    let bed = Bed::start(1, false);
    direct_site(&bed, ", kex_algorithms: curve25519-sha256", true);
    let out = bed.drover(&["check", "w", "-v"]);
    out.expect(exit_code::OK);
    assert!(
        out.stdout.contains("kex curve25519-sha256") || out.stderr.contains("kex curve25519-sha256"),
        "{out}"
    );
}
