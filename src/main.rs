//! The `drover` binary: everything is in the library; this maps it to an exit code.

fn main() {
    std::process::exit(drover::cli::main());
}
