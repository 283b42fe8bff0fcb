//! Which transport a run reaches its nodes with. A clap value too: `--transport`.

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportKind {
    /// Over SSH, one multiplexed connection per node.
    Ssh,
    /// On this machine, once per node (`DROVER_NODE` names the node): for trying a
    /// workflow out and for measuring drover's own overhead.
    Local,
}
