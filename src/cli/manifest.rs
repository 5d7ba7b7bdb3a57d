//! `rtfx manifest`: tools for the provenance logs of manifest renders (`rtfx render --log`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use rtfx::offline::provenance::merge_logs;

/// Options of `rtfx manifest`.
#[derive(Args, Debug)]
pub struct ManifestArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Join a log folder's shard logs into one JSON line per output, on stdout: an output's
    /// last record (a resumed run appends one for each re-render), and where logs of runs with
    /// different shard counts both hold it, the record that matches the output's file.
    Merge {
        /// The folder given to `rtfx render --log`.
        dir: PathBuf,
    },
}

/// Runs `rtfx manifest …`.
pub fn run(args: &ManifestArgs) -> anyhow::Result<()> {
    match &args.action {
        Action::Merge { dir } => {
            let mut out = UntilClosed {
                inner: std::io::BufWriter::new(std::io::stdout().lock()),
                closed: false,
            };
            let merged = merge_logs(dir, &mut out).context("rtfx manifest merge")?;
            if out.closed {
                // A reader that stopped early (`| head`) got what it wanted.
                return Ok(());
            }
            errln!(
                "{} records, one per output, from {} logs in '{}' ({} earlier records of \
                 re-rendered outputs and {} lines cut short left out)",
                merged.records,
                merged.logs,
                dir.display(),
                merged.superseded,
                merged.cut
            );
            if merged.unresolved > 0 {
                errln!(
                    "warning: {} outputs are recorded in logs of different shard counts and \
                     match none of their records now (changed or removed since): each keeps \
                     the record of the last log by name",
                    merged.unresolved
                );
            }
            Ok(())
        }
    }
}

/// A writer that goes quiet once its reader has gone (`| head`): the rest is discarded.
struct UntilClosed<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> UntilClosed<W> {
    fn unless_closed<T>(&mut self, done: T, r: std::io::Result<T>) -> std::io::Result<T> {
        match r {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(done)
            }
            other => other,
        }
    }
}

impl<W: Write> Write for UntilClosed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let r = self.inner.write(buf);
        self.unless_closed(buf.len(), r)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let r = self.inner.flush();
        self.unless_closed((), r)
    }
}
