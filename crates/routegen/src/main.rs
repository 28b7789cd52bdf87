//! `routegen` command line: thin glue over the library.

/// mimalloc: at 10,000 Routes and more, glibc malloc spends a quarter of
/// a pass consolidating and searching free lists (measured in
/// BENCHMARKS.md); mimalloc keeps passes and peak memory lower. Built
/// without its transparent-huge-page requests (the workspace's `no_thp`
/// feature: a fault zeroed 2 MiB and could stall in compaction).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};

use cli::{Cli, Command};

fn main() -> ExitCode {
    // Usage errors exit with cli::status::USAGE (clap's 2), help and
    // --version with 0; printing them to a closed pipe is no error.
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches).map(|cli| (cli, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(cli::status::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Check(args) => cli::check::exec(&args),
        Command::Render(args) => cli::render::exec(&args),
        Command::Diff(args) => {
            // Which flags were given (diff takes the others from a
            // sidecar's stored options).
            let given = matches.subcommand_matches("diff").cloned();
            cli::diff::exec(&args, given.as_ref())
        }
        Command::Run(args) => cli::run::exec(*args),
    }
}
