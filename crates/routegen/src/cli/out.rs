//! Writing what the commands print. `routegen check | head` closes the
//! pipe early: a closed stdout (EPIPE) is a quiet, normal end, never a
//! panic or an error message, and the command keeps the exit status it
//! has already decided (0, or 1 for rejections or differences). Notes on
//! stderr (warnings, rejections, errors) are written the same way: a
//! closed stderr loses them but never stops the command.

use std::fmt;
use std::io::{self, Write};

/// Print `text` on stdout and flush it. A closed pipe is not an error
/// (the reader has what it wanted); any other failure is, as
/// "cannot write to stdout: …".
pub(crate) fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to stdout"))
        }
        _ => Ok(()),
    }
}

/// One line on stderr; a failure to write it is ignored. Its `error:`,
/// `rejected:` or `warning:` prefix is coloured when stderr is a terminal
/// (anstream: `NO_COLOR` turns colour off, `CLICOLOR_FORCE` on).
pub(crate) fn note_line(args: fmt::Arguments<'_>) {
    let line = args.to_string();
    let _ = writeln!(anstream::stderr().lock(), "{}", styled(&line));
}

/// `line` with its severity prefix in colour (ANSI; stripped by anstream
/// when not wanted).
fn styled(line: &str) -> String {
    use anstyle::{AnsiColor, Style};
    let red = Style::new().fg_color(Some(AnsiColor::Red.into()));
    let yellow = Style::new().fg_color(Some(AnsiColor::Yellow.into()));
    for (prefix, style) in [
        ("error:", red.bold()),
        ("rejected:", red),
        ("warning:", yellow),
    ] {
        if let Some(rest) = line.strip_prefix(prefix) {
            return format!("{style}{prefix}{style:#}{rest}");
        }
    }
    line.to_string()
}

/// `note!("warning: {w}")`: like `eprintln!`, without the panic when
/// stderr is closed.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::cli::out::note_line(format_args!($($arg)*))
    };
}
pub(crate) use note;
