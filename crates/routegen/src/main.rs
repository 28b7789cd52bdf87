//! `routegen` command line: thin glue over the library.

/// mimalloc: at 10,000 Routes and more, glibc malloc spends a quarter of
/// a pass consolidating and searching free lists (measured in
/// BENCHMARKS.md); mimalloc keeps passes and peak memory lower.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;

use std::process::ExitCode;

use clap::Parser as _;

use cli::{Cli, Command};

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check(args) => cli::check::exec(&args),
        Command::Render(args) => cli::render::exec(&args),
        Command::Diff(args) => cli::diff::exec(&args),
        Command::Run(args) => cli::run::exec(*args),
    }
}
