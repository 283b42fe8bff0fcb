//! A private network behind a jump host, for `proxy_jump` tests: a network namespace whose
//! only way in is a jump sshd on a veth link, with a testbed node's sshd on the private
//! side's loopback, where the controller (in the test's own namespace) cannot reach it.
//!
//! Both sshds are the testbed's own (its configs, host keys and authorized keys), moved
//! into the namespace: node001 becomes the jump host, listening on the veth address
//! instead of 127.0.0.2 and logging at DEBUG1 (so every forwarding it serves is in its log);
//! node002 keeps its `127.0.0.3:PORT`, which in the test's namespace nobody serves any more
//! (the testbed's lease keeps others off that port), so a direct connection is refused.
//! Namespaces and veth links need root (CAP_NET_ADMIN), as the CI image has.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use drover_testbed::Testbed;

static SEQ: AtomicU32 = AtomicU32::new(0);

pub struct JumpNet {
    /// `unshare --net sleep`: it holds the namespace; the sshds are entered into it.
    holder: Child,
    sshds: Vec<Child>,
    link: String,
    /// The jump host's address on the veth link, reachable from the controller.
    pub jump: String,
    pub port: u16,
    /// The jump sshd's stderr, at DEBUG1.
    pub jump_log: PathBuf,
    /// `[jump]:port` with the jump's (node001's) host key.
    pub jump_known_hosts: PathBuf,
}

fn run(cmd: &mut Command) {
    let out = cmd.stdin(Stdio::null()).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed (this test needs root for a network namespace): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl JumpNet {
    /// Moves node001 (as the jump host) and node002 of `tb` into a private network. The
    /// testbed's own sshds of both are stopped.
    pub fn start(tb: &mut Testbed) -> JumpNet {
        tb.stop_node(0).expect("stop node001");
        tb.stop_node(1).expect("stop node002");
        let port = tb.nodes()[1].port;
        let holder = Command::new("unshare")
            .args(["--net", "sleep", "3600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        let ns = format!("/proc/{}/ns/net", holder.id());
        let own = std::fs::read_link("/proc/self/ns/net").expect("own netns");
        let t = Instant::now();
        while std::fs::read_link(&ns).ok().is_none_or(|n| n == own) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "unshare --net made no namespace"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let nsenter = |prog: &str| {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={ns}")).arg(prog);
            c
        };
        // A /30 and link names no other test process on the machine uses at once.
        let id = std::process::id() * 8 + SEQ.fetch_add(1, Ordering::Relaxed);
        let (hi, lo) = ((id >> 6) & 0xff, (id & 63) * 4);
        let (outer, inner) = (
            format!("10.213.{hi}.{}", lo + 1),
            format!("10.213.{hi}.{}", lo + 2),
        );
        let link = format!("drvj{}", id % 1_000_000_000);
        let peer = format!("drvp{}", id % 1_000_000_000);
        run(Command::new("ip")
            .args([
                "link", "add", &link, "type", "veth", "peer", "name", &peer, "netns",
            ])
            .arg(holder.id().to_string()));
        run(Command::new("ip").args(["addr", "add", &format!("{outer}/30"), "dev", &link]));
        run(Command::new("ip").args(["link", "set", &link, "up"]));
        run(nsenter("ip").args(["link", "set", "lo", "up"]));
        run(nsenter("ip").args(["addr", "add", &format!("{inner}/30"), "dev", &peer]));
        run(nsenter("ip").args(["link", "set", &peer, "up"]));

        let sshd_dir = |i: usize| tb.dir().join("sshd").join(&tb.nodes()[i].name);
        let node_config = sshd_dir(1).join("sshd_config");
        let jump_config = tb.dir().join("jump_sshd_config");
        let text = std::fs::read_to_string(sshd_dir(0).join("sshd_config")).expect("node001 config");
        let from = format!("ListenAddress {}:{port}", tb.nodes()[0].host);
        assert!(text.contains(&from), "{text}");
        let text = text
            .replace(&from, &format!("ListenAddress {inner}:{port}"))
            .replace("LogLevel ERROR", "LogLevel DEBUG1");
        std::fs::write(&jump_config, text).expect("write jump config");
        let jump_log = tb.dir().join("jump_sshd.log");
        let node_log = tb.dir().join("private_node_sshd.log");
        let mut sshds = Vec::new();
        for (config, log) in [(&jump_config, &jump_log), (&node_config, &node_log)] {
            let child = nsenter("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(log).expect("log file"))
                .spawn()
                .expect("sshd");
            sshds.push(child);
        }
        let key = std::fs::read_to_string(sshd_dir(0).join("ssh_host_ed25519_key.pub")).expect("host key");
        let jump_known_hosts = tb.dir().join("jump_known_hosts");
        std::fs::write(&jump_known_hosts, format!("[{inner}]:{port} {key}")).expect("known_hosts");
        let net = JumpNet {
            holder,
            sshds,
            link,
            jump: inner,
            port,
            jump_log,
            jump_known_hosts,
        };
        let node = &tb.nodes()[1].host;
        net.wait_listening(node, port);
        net
    }

    /// Until the jump answers from here and the node from inside the namespace.
    fn wait_listening(&self, node: &str, port: u16) {
        let ns = format!("/proc/{}/ns/net", self.holder.id());
        let t = Instant::now();
        loop {
            let jump = std::net::TcpStream::connect_timeout(
                &format!("{}:{port}", self.jump).parse().expect("address"),
                Duration::from_secs(1),
            )
            .is_ok();
            let inside = Command::new("nsenter")
                .arg(format!("--net={ns}"))
                .args(["bash", "-c", &format!(": </dev/tcp/{node}/{port}")])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if jump && inside {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "the private network's sshds never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn jump_log(&self) -> String {
        std::fs::read_to_string(&self.jump_log).unwrap_or_default()
    }

    pub fn known_hosts(&self) -> &Path {
        &self.jump_known_hosts
    }
}

impl Drop for JumpNet {
    fn drop(&mut self) {
        for c in self.sshds.iter_mut().chain(std::iter::once(&mut self.holder)) {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Gone with the namespace anyway, once its last process has exited.
        let _ = Command::new("ip")
            .args(["link", "del", &self.link])
            .stderr(Stdio::null())
            .status();
    }
}
