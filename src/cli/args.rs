//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Declarative, git-driven rolling changes for fleets of nodes.
#[derive(Debug, Parser)]
#[command(name = "drover", version, about, long_about = None)]
pub struct Cli {
    /// When to color output.
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    pub color: Color,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a site (drover.yml, its inventory and every workflow) without touching a node.
    Validate {
        /// A site directory or its drover.yml.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the JSON Schemas of the file formats (for editors) into a directory.
    Schema {
        /// Where to write them.
        #[arg(long, default_value = "schemas")]
        out: PathBuf,
        /// Do not write; exit 4 if the files there differ from what this drover generates.
        #[arg(long)]
        check: bool,
    },
}
