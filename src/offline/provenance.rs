//! Provenance records of rendered items (`rtfx render --log DIR`) and resuming from them
//! (`--resume`).
//!
//! Each rendered file gets one JSON line: its key, input and output, the concrete chain as
//! `-e` specs (every parameter's value, so `rtfx render IN OUT -e …` with them and the same
//! seed gives the same bytes), the seed, input and output frames and rates, the output's
//! SHA-256, rtfx's version and the wall time. A shard writes its own file
//! (`shard-I-of-N.jsonl`, or `render.jsonl` unsharded), so shards never share one; `rtfx
//! manifest merge`-style joining is `cat DIR/*.jsonl`.
//!
//! Resuming skips an item whose output exists with the SHA-256, chain and seed of a record;
//! anything else is rendered again (atomically, as always).

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

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
    use sha2::Digest;
    let shown = path.display().to_string();
    let mut file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("Cannot read '{shown}': {e}"), &shown))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io(format!("Cannot read '{shown}': {e}"), &shown))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
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
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let ends_cleanly = std::fs::read(path)
            .map(|bytes| bytes.last().is_none_or(|&b| b == b'\n'))
            .unwrap_or(true);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if !ends_cleanly {
            file.write_all(b"\n").map_err(io)?;
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

/// Every record in the `*.jsonl` files of `dir`, by output path (the last record of an output
/// wins). Lines that do not parse (a record cut short by a kill) are skipped and counted.
pub fn load_records(dir: &Path) -> Result<(HashMap<PathBuf, Record>, u64)> {
    let mut records = HashMap::new();
    let mut skipped = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok((records, 0));
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    for path in files {
        let shown = path.display().to_string();
        let file = std::fs::File::open(&path)
            .map_err(|e| Error::io(format!("Cannot read log '{shown}': {e}"), &shown))?;
        for line in std::io::BufReader::new(file).lines() {
            let line =
                line.map_err(|e| Error::io(format!("Cannot read log '{shown}': {e}"), &shown))?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Record>(&line) {
                Ok(record) => {
                    records.insert(record.output.clone(), record);
                }
                Err(_) => skipped += 1,
            }
        }
    }
    Ok((records, skipped))
}

/// Whether `output` is already what `record` says, for this chain and seed.
pub fn is_done(record: Option<&Record>, output: &Path, chain: &[String], seed: u64) -> bool {
    let Some(record) = record else {
        return false;
    };
    record.chain == chain
        && record.seed == seed
        && output.is_file()
        && sha256_file(output).is_ok_and(|sha| sha == record.sha256)
}

/// Removes temporary files a killed render left beside `output` (`.NAME.tmp-*`).
pub fn remove_stale_temporaries(output: &Path) {
    let (Some(dir), Some(name)) = (output.parent(), output.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
