//! Provenance records of rendered items (`rtfx render --log DIR`) and resuming from them
//! (`--resume`).
//!
//! Each rendered file gets one JSON line: its key, input and output, the concrete chain as
//! `-e` specs (every parameter's value, so `rtfx render IN OUT -e …` with them and the same
//! seed gives the same bytes), the seed, input and output frames and rates, the output's
//! SHA-256, rtfx's version and the wall time. A shard writes its own file
//! (`shard-I-of-N.jsonl`, or `render.jsonl` unsharded), so shards never share one;
//! [`merge_logs`] (`rtfx manifest merge`) joins them into one record per output.
//!
//! Resuming skips an item whose output exists with the SHA-256, chain and seed of a record;
//! anything else is rendered again (atomically, as always).

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One rendered item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The item's identity (a manifest's key, else its input path).
    pub key: String,
    /// Input path as rendered.
    pub input: PathBuf,
    /// Output path as written.
    pub output: PathBuf,
    /// The concrete chain, one `-e` spec per effect.
    pub chain: Vec<String>,
    /// The seed used (dither noise).
    pub seed: u64,
    /// Input frames and rate.
    pub input_frames: Option<u64>,
    /// Input sample rate.
    pub input_rate: u32,
    /// Output frames, rate and channels.
    pub output_frames: u64,
    /// Output sample rate.
    pub output_rate: u32,
    /// Output channels.
    pub output_channels: usize,
    /// SHA-256 of the output file, hex.
    pub sha256: String,
    /// rtfx's version.
    pub rtfx: String,
    /// Seconds the render took.
    pub wall_seconds: f64,
}

/// The SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    Ok(sha256_digest(path)?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The SHA-256 of a file.
fn sha256_digest(path: &Path) -> Result<[u8; 32]> {
    use sha2::Digest;
    let shown = path.display().to_string();
    let mut file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("Cannot read '{shown}': {e}"), &shown))?;
    let mut hasher = sha2::Sha256::new();
    // On the stack: a zeroed heap buffer of a megabyte cost more than hashing a short clip.
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io(format!("Cannot read '{shown}': {e}"), &shown))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// A chain's specs hashed one by one (each ended by a newline, which no spec holds).
fn chain_digest(chain: &[String]) -> [u8; 32] {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for spec in chain {
        hasher.update(spec.as_bytes());
        hasher.update(b"\n");
    }
    hasher.finalize().into()
}

/// What resuming keeps of a record: digests of its chain and output, and its seed (a tenth
/// of a whole [`Record`]'s memory, for logs of millions of items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    chain: [u8; 32],
    seed: u64,
    sha256: [u8; 32],
}

impl Rendered {
    /// `None` when the record's `sha256` is not 64 hex digits.
    pub fn of(record: &Record) -> Option<Self> {
        let hex = record.sha256.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let mut sha256 = [0u8; 32];
        for (byte, pair) in sha256.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(Rendered {
            chain: chain_digest(&record.chain),
            seed: record.seed,
            sha256,
        })
    }
}

/// The log file of a shard in `dir`.
pub fn log_path(dir: &Path, shard: Option<(u64, u64)>) -> PathBuf {
    match shard {
        Some((index, count)) => dir.join(format!("shard-{index}-of-{count}.jsonl")),
        None => dir.join("render.jsonl"),
    }
}

/// Appends records to a log file, one line each, written whole.
pub struct LogWriter {
    file: std::sync::Mutex<std::fs::File>,
    shown: String,
}

impl LogWriter {
    /// Opens (creating `dir` and the file) for appending. A last line cut short by a killed
    /// run is ended first, so the next record starts a line of its own.
    pub fn open(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let io = |e: std::io::Error| Error::io(format!("Cannot write log '{shown}': {e}"), &shown);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if dir.exists() && !dir.is_dir() {
                let folder = dir.display().to_string();
                return Err(Error::io(
                    format!("Log folder '{folder}' is a file, not a folder"),
                    &folder,
                )
                .with_suggestion(
                    "--log takes a folder (made if missing), where each shard writes a JSON \
                     Lines file of its own: give another path",
                ));
            }
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        // Only the last byte says whether a killed run cut a line short (a long log is not
        // read for it).
        let length = file.metadata().map_err(io)?.len();
        if length > 0 {
            let mut last = [0u8];
            file.seek(SeekFrom::Start(length - 1)).map_err(io)?;
            file.read_exact(&mut last).map_err(io)?;
            if last[0] != b'\n' {
                file.write_all(b"\n").map_err(io)?;
            }
        }
        Ok(LogWriter {
            file: std::sync::Mutex::new(file),
            shown,
        })
    }

    /// Appends one record.
    pub fn append(&self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_vec(record)
            .map_err(|e| Error::format(format!("Cannot encode a record: {e}")))?;
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .map_err(|_| Error::io("The log was poisoned", &self.shown))?;
        file.write_all(&line)
            .and_then(|()| file.flush())
            .map_err(|e| {
                Error::io(
                    format!("Cannot write log '{}': {e}", self.shown),
                    &self.shown,
                )
            })
    }
}

/// The records to resume from, by output path (the last record of an output wins): those of
/// `own` (a shard's log) alone when given, else of every `*.jsonl` file in `dir`. Lines that
/// do not parse (a record cut short by a kill) are skipped and counted.
///
/// A shard reads its own log only: its items are the same in every run with the same shard
/// count, and reading every shard's log in every shard would cost memory and reads in
/// proportion to the whole dataset, per shard.
pub fn load_records(dir: &Path, own: Option<&Path>) -> Result<(HashMap<PathBuf, Rendered>, u64)> {
    let mut records = HashMap::new();
    let mut skipped = 0;
    let files: Vec<PathBuf> = match own {
        Some(own) => own
            .is_file()
            .then(|| own.to_path_buf())
            .into_iter()
            .collect(),
        None => log_files(dir).unwrap_or_default(),
    };
    for path in files {
        read_records(&path, |_, record| match record {
            Some((output, rendered)) => {
                records.insert(output, rendered);
            }
            None => skipped += 1,
        })?;
    }
    Ok((records, skipped))
}

/// The `*.jsonl` files in `dir`, by name.
pub fn log_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// A log's lines, with errors that name it.
fn log_lines(path: &Path) -> Result<impl Iterator<Item = Result<String>>> {
    let shown = path.display().to_string();
    let cannot =
        move |e: std::io::Error| Error::io(format!("Cannot read log '{shown}': {e}"), &shown);
    let file = std::fs::File::open(path).map_err(&cannot)?;
    Ok(std::io::BufReader::new(file)
        .lines()
        .map(move |line| line.map_err(&cannot)))
}

/// Calls `each` with the line number (from 0) and what resuming keeps of each record in the
/// log at `path` (`None` for a line that is no record: one a kill cut short). Blank lines are
/// skipped.
fn read_records(path: &Path, mut each: impl FnMut(u64, Option<(PathBuf, Rendered)>)) -> Result<()> {
    for (number, line) in (0u64..).zip(log_lines(path)?) {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str::<Record>(&line).ok().and_then(|r| {
            let rendered = Rendered::of(&r)?;
            Some((r.output, rendered))
        });
        each(number, record);
    }
    Ok(())
}

/// Whether `output` is already what `record` says, for this chain and seed.
pub fn is_done(record: Option<&Rendered>, output: &Path, chain: &[String], seed: u64) -> bool {
    let Some(record) = record else {
        return false;
    };
    record.seed == seed
        && record.chain == chain_digest(chain)
        && output.is_file()
        && sha256_digest(output).is_ok_and(|sha| sha == record.sha256)
}

/// What [`merge_logs`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merged {
    /// Log files read.
    pub logs: usize,
    /// Records written: one per output.
    pub records: u64,
    /// Earlier records of outputs rendered again, left out.
    pub superseded: u64,
    /// Lines that are no record (cut short by a kill), left out.
    pub cut: u64,
    /// Outputs recorded in more than one log (runs with different shard counts) whose file on
    /// disk matched none of those records: the record of the last log (by name) was kept.
    pub unresolved: u64,
}

/// Writes one record per output from the `*.jsonl` logs in `dir` to `out`: within a log the
/// last record of an output (a re-render appends one), and where logs of runs with different
/// shard counts both hold an output, the record whose SHA-256 matches the output's file now.
/// Records keep their text and their order (logs by name, lines in order). Memory: a few
/// hundred bytes per output; the logs are read twice, never whole.
///
/// # Errors
/// `dir` or a log cannot be read, or `out` cannot be written.
pub fn merge_logs(dir: &Path, out: &mut dyn Write) -> Result<Merged> {
    let files = log_files(dir).map_err(|e| {
        let shown = dir.display().to_string();
        Error::io(format!("Cannot read log folder '{shown}': {e}"), &shown)
            .with_suggestion("give the folder passed to rtfx render --log")
    })?;
    // Per output, the last record in each log that holds it, as (log, line, output hash):
    // the latest log's, and those of earlier logs (none, and no allocation, for most).
    type Place = (u32, u64, [u8; 32]);
    let mut by_output: HashMap<PathBuf, (Place, Vec<Place>)> = HashMap::new();
    let mut merged = Merged {
        logs: files.len(),
        ..Merged::default()
    };
    for (log, path) in (0u32..).zip(&files) {
        read_records(path, |line, record| {
            let Some((output, rendered)) = record else {
                merged.cut += 1;
                return;
            };
            let place = (log, line, rendered.sha256);
            match by_output.entry(output) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((place, Vec::new()));
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let (latest, earlier) = o.get_mut();
                    merged.superseded += 1;
                    if latest.0 != log {
                        earlier.push(*latest);
                    }
                    *latest = place;
                }
            }
        })?;
    }
    // The winning lines of each log, in order.
    let mut winners: Vec<Vec<u64>> = vec![Vec::new(); files.len()];
    for (output, (latest, earlier)) in &by_output {
        let (log, line, _) = if earlier.is_empty() {
            *latest
        } else {
            let on_disk = sha256_digest(output).ok();
            match std::iter::once(latest)
                .chain(earlier.iter().rev())
                .find(|p| Some(p.2) == on_disk)
            {
                Some(found) => *found,
                None => {
                    merged.unresolved += 1;
                    *latest
                }
            }
        };
        winners[log as usize].push(line);
    }
    drop(by_output);
    for lines in &mut winners {
        lines.sort_unstable();
    }
    let write_error =
        |e: std::io::Error| Error::io(format!("Cannot write the merged records: {e}"), "output");
    for (path, wanted) in files.iter().zip(&winners) {
        let mut wanted = wanted.iter().peekable();
        if wanted.peek().is_none() {
            continue;
        }
        for (line, text) in (0u64..).zip(log_lines(path)?) {
            let text = text?;
            if wanted.next_if_eq(&&line).is_some() {
                out.write_all(text.as_bytes())
                    .and_then(|()| out.write_all(b"\n"))
                    .map_err(write_error)?;
                merged.records += 1;
            }
        }
    }
    out.flush().map_err(write_error)?;
    Ok(merged)
}

/// Temporary files that killed renders left in output folders (`.NAME.tmp-*`, beside the
/// output `NAME`), removed when their output is rendered again. Each folder is listed once,
/// the first time one of its outputs is resumed: a listing per item made resuming a folder of
/// n outputs cost n listings of n names. A temporary file that appears after the listing is
/// none of a killed run's (outputs are distinct, so only this run writes beside them).
#[derive(Default)]
pub struct StaleTemporaries {
    /// Per folder listed: the temporaries found, by the output name they were for.
    folders: Mutex<HashMap<PathBuf, HashMap<OsString, Vec<PathBuf>>>>,
}

impl StaleTemporaries {
    /// Removes the temporary files a killed render of `output` left (best effort: one that
    /// cannot be removed is left, and the render goes on).
    pub fn remove(&self, output: &Path) {
        let (Some(dir), Some(name)) = (output.parent(), output.file_name()) else {
            return;
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let Ok(mut folders) = self.folders.lock() else {
            return;
        };
        let found = folders
            .entry(dir.to_path_buf())
            .or_insert_with(|| list_temporaries(dir));
        for path in found.remove(name).unwrap_or_default() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The `.NAME.tmp-*` files in `dir`, by `NAME`.
fn list_temporaries(dir: &Path) -> HashMap<OsString, Vec<PathBuf>> {
    let mut found: HashMap<OsString, Vec<PathBuf>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let text = file_name.to_string_lossy();
        let Some(name) = text
            .strip_prefix('.')
            .and_then(|rest| rest.rsplit_once(".tmp-"))
            .map(|(name, _)| name)
        else {
            continue;
        };
        found.entry(name.into()).or_default().push(entry.path());
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(output: &str) -> Record {
        Record {
            key: "k".into(),
            input: "in.wav".into(),
            output: output.into(),
            chain: vec!["gain:gain=0.5,gain_type=amplitude,clamp=false".into()],
            seed: 1,
            input_frames: Some(10),
            input_rate: 48000,
            output_frames: 10,
            output_rate: 48000,
            output_channels: 1,
            sha256: "ab".repeat(32),
            rtfx: "0".into(),
            wall_seconds: 0.0,
        }
    }

    #[test]
    fn a_line_cut_short_is_ended_before_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_path(dir.path(), None);
        std::fs::write(&path, "{\"key\": \"cut sh").unwrap();
        LogWriter::open(&path)
            .unwrap()
            .append(&record("a.wav"))
            .unwrap();
        // A log that ends cleanly gets nothing in between.
        LogWriter::open(&path)
            .unwrap()
            .append(&record("b.wav"))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], "{\"key\": \"cut sh");
        assert!(text.ends_with('\n'));
        let (records, cut) = load_records(dir.path(), None).unwrap();
        assert_eq!((records.len(), cut), (2, 1));
        assert_eq!(
            records[Path::new("b.wav")],
            Rendered::of(&record("b.wav")).unwrap()
        );
    }

    #[test]
    fn an_output_is_done_only_with_its_records_chain_seed_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("a.wav");
        std::fs::write(&output, "rendered").unwrap();
        let mut r = record(&output.display().to_string());
        r.sha256 = sha256_file(&output).unwrap();
        let done = Rendered::of(&r).unwrap();
        let chain = r.chain.clone();
        assert!(is_done(Some(&done), &output, &chain, 1));
        assert!(!is_done(None, &output, &chain, 1));
        assert!(!is_done(Some(&done), &output, &chain, 2));
        let mut other = chain.clone();
        other[0].push('1');
        assert!(!is_done(Some(&done), &output, &other, 1));
        // Specs are compared whole, not as one joined string.
        let split = vec![
            "gain:gain=0.5,".to_string(),
            "gain_type=amplitude,clamp=false".into(),
        ];
        assert!(!is_done(Some(&done), &output, &split, 1));
        std::fs::write(&output, "rendered, then changed").unwrap();
        assert!(!is_done(Some(&done), &output, &chain, 1));
        std::fs::remove_file(&output).unwrap();
        assert!(!is_done(Some(&done), &output, &chain, 1));
        // A record whose hash is not 64 hex digits is no record.
        r.sha256 = "zz".into();
        assert!(Rendered::of(&r).is_none());
    }

    #[test]
    fn a_shard_resumes_from_its_own_log_and_one_process_from_all() {
        let dir = tempfile::tempdir().unwrap();
        let (zero, one) = (
            log_path(dir.path(), Some((0, 2))),
            log_path(dir.path(), Some((1, 2))),
        );
        for (path, output) in [(&zero, "a.wav"), (&one, "b.wav")] {
            LogWriter::open(path)
                .unwrap()
                .append(&record(output))
                .unwrap();
        }
        let (own, cut) = load_records(dir.path(), Some(&zero)).unwrap();
        assert_eq!((own.len(), cut), (1, 0));
        assert!(own.contains_key(Path::new("a.wav")));
        let (all, _) = load_records(dir.path(), None).unwrap();
        assert_eq!(all.len(), 2);
        // A shard's log that does not exist yet holds nothing.
        let (none, _) =
            load_records(dir.path(), Some(&log_path(dir.path(), Some((2, 3))))).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn merging_keeps_one_record_per_output_the_last_or_the_one_that_matches_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let (logs, d) = (dir.path().join("logs"), dir.path());
        let file = |name: &str, bytes: &str| {
            let path = d.join(name);
            std::fs::write(&path, bytes).unwrap();
            path.display().to_string()
        };
        let (a, b, c) = (
            file("a.wav", "a now"),
            file("b.wav", "b"),
            file("c.wav", "c now"),
        );
        let rec = |output: &str, bytes: &str, seed: u64| {
            let mut r = record(output);
            r.seed = seed;
            std::fs::write(d.join("x"), bytes).unwrap();
            r.sha256 = sha256_file(&d.join("x")).unwrap();
            r
        };
        let append = |log: &Path, r: &Record| LogWriter::open(log).unwrap().append(r).unwrap();
        let two = log_path(&logs, Some((0, 2)));
        let three = log_path(&logs, Some((0, 3)));
        // Within a log the last record of an output wins (a re-render appends one).
        append(&two, &rec(&a, "a before", 1));
        append(&two, &rec(&b, "b", 2));
        append(&two, &rec(&a, "a now", 3));
        // Across logs of two shard counts, the record matching the file wins, wherever it is.
        append(&two, &rec(&c, "c now", 4));
        append(&three, &rec(&c, "c other", 5));
        // Neither matches the file: the last log's record stays, counted.
        let d_out = file("d.wav", "d on disk");
        append(&two, &rec(&d_out, "d one", 6));
        append(&three, &rec(&d_out, "d two", 7));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&three)
            .unwrap()
            .write_all(b"{\"key\": \"cut")
            .unwrap();
        let mut out = Vec::new();
        let merged = merge_logs(&logs, &mut out).unwrap();
        let seeds: Vec<u64> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Record>(l).unwrap().seed)
            .collect();
        // Logs by name (shard-0-of-2 before shard-0-of-3), lines in order.
        assert_eq!(seeds, [2, 3, 4, 7]);
        assert_eq!(
            merged,
            Merged {
                logs: 2,
                records: 4,
                superseded: 3,
                cut: 1,
                unresolved: 1
            }
        );
        let e = merge_logs(&d.join("none"), &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("Cannot read log folder"), "{e}");
    }

    #[test]
    fn a_log_folder_that_is_a_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("logs");
        std::fs::write(&file, "").unwrap();
        let e = LogWriter::open(&log_path(&file, Some((0, 2))))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("logs' is a file, not a folder"), "{e}");
        assert!(e.contains("--log takes a folder"), "{e}");
    }

    #[test]
    fn stale_temporaries_go_per_output_from_one_listing_of_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in [
            ".a.wav.tmp-1x",
            ".a.wav.tmp-2y",
            ".b.wav.tmp-3z",
            ".c.wav.tmp-4w",
            "b.wav",
        ] {
            std::fs::write(d.join(name), "").unwrap();
        }
        let stale = StaleTemporaries::default();
        stale.remove(&d.join("a.wav"));
        let left = |name: &str| d.join(name).exists();
        assert!(!left(".a.wav.tmp-1x") && !left(".a.wav.tmp-2y"));
        assert!(left(".b.wav.tmp-3z") && left(".c.wav.tmp-4w") && left("b.wav"));
        // The folder is listed once per run, not once per item (which made resuming a folder
        // of n outputs cost n listings of n names): a file that appears after that listing is
        // none of a killed run's.
        std::fs::write(d.join(".b.wav.tmp-late"), "").unwrap();
        stale.remove(&d.join("b.wav"));
        assert!(!left(".b.wav.tmp-3z"));
        assert!(left(".b.wav.tmp-late") && left("b.wav") && left(".c.wav.tmp-4w"));
        // An output in the working folder (no parent) works too.
        stale.remove(Path::new("no-such-output.wav"));
    }
}
