//! SSH settings in drover's own config instead of an ssh_config file: per-node
//! `identity_file` and `known_hosts`, the `accept-new` host key policy and the negotiated key
//! exchange, against real sshds.

use drover::exit_code;

use super::bed::{Bed, node, workflow};
use super::jump_net::JumpNet;

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

/// A node that only a jump host can reach (it listens inside a private network, see
/// [`JumpNet`]) is reached through `proxy_jump` given for its group, with the node's own
/// identity and known_hosts and no ssh_config: the jump's connection must get them too.
#[test]
fn a_node_behind_a_jump_host_is_reached_through_proxy_jump_without_an_ssh_config() {
    let mut bed = Bed::start(2, false);
    let net = JumpNet::start(&mut bed.tb);
    let tb = &bed.tb;
    let n = &tb.nodes()[1];
    let q = |p: &std::path::Path| serde_json::json!(p.display().to_string()).to_string();
    let inventory = format!(
        "nodes:\n  node002:\n    host: {host}\n    port: {port}\n    user: {user}\n    \
         ssh: {{ identity_file: {id}, known_hosts: [{kh}, {jkh}] }}\n    vars: {{ state: {state} }}\n\
         groups:\n  all: [node002]\n  private: [node002]\n",
        host = n.host,
        port = n.port,
        user = serde_json::json!(tb.user()),
        id = q(&tb.identity()),
        kh = q(&tb.node_known_hosts(1)),
        jkh = q(net.known_hosts()),
        state = q(&n.state_dir),
    );
    bed.write("inventory.yml", &inventory);
    bed.write(
        "workflows/w.yml",
        &workflow("strategy: { batch: [\"100%\"] }\n", MARK),
    );
    let jump = format!("{}@{}:{}", tb.user(), net.jump, net.port);

    // Without the jump host, the node cannot be reached: the direct connection is refused.
    bed.site_yaml("connect_timeout: 15s", "");
    let out = bed.drover(&["check", "w", "--json"]);
    assert!(out.stdout.contains("Connection refused"), "{out}");
    assert!(
        !net.jump_log().contains("server_request_direct_tcpip"),
        "{}",
        net.jump_log()
    );

    bed.site_yaml(
        &format!("connect_timeout: 15s, groups: {{ private: {{ proxy_jump: {jump:?} }} }}"),
        "",
    );
    let out = bed.drover(&["run", "w", "--yes", "--json"]);
    out.expect(exit_code::OK);
    assert!(bed.has(1, "done"), "{out}");
    // The jump host forwarded the connection to the node's private address.
    let log = net.jump_log();
    let target = format!("target {} port {}", n.host, n.port);
    assert!(
        log.lines()
            .any(|l| l.contains("server_request_direct_tcpip") && l.contains(&target)),
        "no forwarding to {target} in the jump host's log:\n{log}"
    );
}
