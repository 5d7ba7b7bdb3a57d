//! Render manifests (`rtfx render --manifest FILE`): one item per line, JSON Lines (`.jsonl`)
//! or CSV with a header row (`.csv`), read as a stream so that a manifest of any length is
//! checked and rendered in flat memory; and shards (`--shard I/N`, `slurm`, `k8s`), which
//! split a manifest into disjoint parts.
//!
//! An item names its `input` and its `output` (or leaves the output to `--output-dir`, which
//! names it after the input), and optionally a `key` (its identity; the input path as written
//! by default), a `seed`, a `chain` file or `preset`, `effects` appended to the chain (`-e`
//! specs; a JSON array, or `;`-separated in CSV), and `params` overrides by
//! `INDEX.PARAMETER` (a JSON object, or `0.cutoff=150;…` in CSV). Relative paths resolve
//! against the manifest's folder. Blank lines are skipped; so are lines starting with `#` in
//! CSV. The text is UTF-8; a byte order mark before the first line is skipped.
//!
//! ```
//! use rtfx::offline::manifest::{Manifest, Shard};
//!
//! let text = "{\"input\": \"a.wav\", \"output\": \"out/a.flac\"}\n{\"input\": \"b.wav\", \"output\": \"out/b.flac\", \"seed\": 7}\n";
//! let manifest = Manifest::from_reader(text.as_bytes(), "m.jsonl".as_ref(), "/data".as_ref())?;
//! let items: Vec<_> = manifest.collect::<Result<_, _>>()?;
//! assert_eq!(items[1].seed, Some(7));
//! assert_eq!(items[0].output.as_deref(), Some(std::path::Path::new("/data/out/a.flac")));
//! assert!(Shard::parse("1/2", None)?.selects(1) && !Shard::parse("1/2", None)?.selects(0));
//! # Ok::<(), rtfx::Error>(())
//! ```

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::offline::audio_io::file_kind_name;

/// One item of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestItem {
    /// 1-based line number in the manifest (for messages).
    pub line: u64,
    /// 0-based position among the manifest's items (what shards split by).
    pub index: u64,
    /// The item's identity: `key`, or the input path as written.
    pub key: String,
    /// Input path (resolved against the manifest's folder).
    pub input: PathBuf,
    /// Output path (resolved), or `None` to name it in `--output-dir`.
    pub output: Option<PathBuf>,
    /// The item's seed (its dither noise and drawn values).
    pub seed: Option<u64>,
    /// A chain file for this item (resolved), instead of the command's chain.
    pub chain: Option<PathBuf>,
    /// A preset for this item, instead of the command's chain.
    pub preset: Option<String>,
    /// Effect specs appended to the item's chain.
    pub effects: Vec<String>,
    /// Parameter overrides, `("INDEX.PARAMETER", value)`: INDEX counts the effects of the
    /// item's whole chain (chain file or preset, `-e` effects, then its own), from 0; the value
    /// is a number, a distribution or a parameter's text value, as in a spec.
    pub params: Vec<(String, String)>,
}

/// The manifest's syntax, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    JsonLines,
    Csv,
}

/// A manifest being read: an iterator of items (or the first malformed line's error).
pub struct Manifest<R> {
    lines: std::io::Lines<R>,
    syntax: Syntax,
    base: PathBuf,
    shown: String,
    /// CSV column names, from the header row.
    columns: Vec<String>,
    line: u64,
    index: u64,
}

/// How `params` are written, for suggestions.
const PARAMS_EXAMPLE_JSON: &str =
    "write \"params\": {\"0.cutoff\": 150, \"1.gain\": \"uniform(0.2,0.4)\"}";
const PARAMS_EXAMPLE_CSV: &str = "write 0.cutoff=150;1.gain=uniform(0.2,0.4)";

/// The fields an item may have.
const FIELDS: [&str; 8] = [
    "input", "output", "key", "seed", "chain", "preset", "effects", "params",
];

impl Manifest<std::io::BufReader<std::fs::File>> {
    /// Opens a manifest file; `.jsonl`/`.ndjson`/`.json` are JSON Lines, `.csv` is CSV.
    pub fn open(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        // It is read twice (every line checked, then rendered), which a pipe cannot be, and
        // opening a FIFO would wait for a writer: the kind is checked first.
        if let Ok(meta) = std::fs::metadata(path)
            && !meta.is_file()
        {
            let what = if meta.is_dir() {
                "a directory"
            } else {
                file_kind_name(&meta.file_type())
            };
            return Err(Error::format(format!(
                "Manifest '{shown}' is {what}, not a regular file"
            ))
            .with_parameter_name(&shown)
            .with_suggestion(
                "give a .jsonl or .csv file: rtfx reads a manifest twice, to check every line \
                 and then to render (save a stream to a file first)",
            ));
        }
        let file = std::fs::File::open(path).map_err(|e| {
            Error::io(
                format!("Cannot open manifest '{shown}': {e}"),
                shown.clone(),
            )
            .with_suggestion("check the path")
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Self::from_reader(std::io::BufReader::new(file), path, &base)
    }
}

impl<R: BufRead> Manifest<R> {
    /// Reads a manifest from `reader`; `path` gives its syntax (extension) and name, `base`
    /// the folder relative paths resolve against.
    pub fn from_reader(reader: R, path: &Path, base: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let syntax = match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("jsonl" | "ndjson" | "json") => Syntax::JsonLines,
            Some("csv") => Syntax::Csv,
            _ => {
                return Err(Error::invalid_parameter(
                    format!("Manifest '{shown}' has no known extension"),
                    "manifest",
                    &shown,
                )
                .with_expected(".jsonl (JSON Lines) or .csv (with a header row)")
                .with_suggestion("name it .jsonl or .csv"));
            }
        };
        let mut manifest = Manifest {
            lines: reader.lines(),
            syntax,
            base: base.to_path_buf(),
            shown,
            columns: Vec::new(),
            line: 0,
            index: 0,
        };
        if syntax == Syntax::Csv {
            manifest.read_header()?;
        }
        Ok(manifest)
    }

    fn error(&self, what: impl std::fmt::Display) -> Error {
        Error::format(format!(
            "Manifest '{}' line {}: {what}",
            self.shown, self.line
        ))
        .with_parameter_name(format!("{}:{}", self.shown, self.line))
    }

    /// The next line that is not blank (nor a CSV comment).
    fn next_line(&mut self) -> Option<Result<String>> {
        loop {
            let line = match self.lines.next()? {
                Ok(line) => line,
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    self.line += 1;
                    return Some(Err(self.error("is not UTF-8 text").with_suggestion(
                        "save the manifest as UTF-8 (in a spreadsheet program: CSV UTF-8)",
                    )));
                }
                Err(e) => {
                    self.line += 1;
                    return Some(Err(self.error(format!("cannot be read ({e})"))));
                }
            };
            self.line += 1;
            // A byte order mark (spreadsheet programs' "CSV UTF-8", Windows editors) is not
            // part of the first line's text.
            let line = match line.strip_prefix('\u{feff}') {
                Some(rest) if self.line == 1 => rest.to_string(),
                _ => line,
            };
            let trimmed = line.trim();
            if trimmed.is_empty() || (self.syntax == Syntax::Csv && trimmed.starts_with('#')) {
                continue;
            }
            return Some(Ok(line));
        }
    }

    fn read_header(&mut self) -> Result<()> {
        let Some(line) = self.next_line().transpose()? else {
            return Err(Error::format(format!("Manifest '{}' is empty", self.shown))
                .with_suggestion("give a header row (input,output,...) and one row per item"));
        };
        let columns = split_csv(&line).map_err(|e| self.error(e))?;
        for column in &columns {
            if !FIELDS.contains(&column.as_str()) {
                return Err(self
                    .error(format!("unknown column '{column}'"))
                    .with_suggestion(format!(
                        "the columns are {}; the header row comes first",
                        FIELDS.join(", ")
                    )));
            }
        }
        if !columns.iter().any(|c| c == "input") {
            return Err(self
                .error("the header has no 'input' column")
                .with_suggestion("start the file with a header row such as input,output"));
        }
        self.columns = columns;
        Ok(())
    }

    /// The fields of one line, as (name, value) text pairs; `effects` as a list.
    fn fields(&self, line: &str) -> Result<Vec<(String, FieldValue)>> {
        match self.syntax {
            Syntax::Csv => {
                let cells = split_csv(line).map_err(|e| self.error(e))?;
                if cells.len() != self.columns.len() {
                    return Err(self
                        .error(format!(
                            "{} cells for {} columns",
                            cells.len(),
                            self.columns.len()
                        ))
                        .with_suggestion("quote cells that hold commas (\"a,b\")"));
                }
                self.columns
                    .iter()
                    .cloned()
                    .zip(cells)
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| {
                        let value = match k.as_str() {
                            "effects" => FieldValue::List(
                                v.split(';').map(|s| s.trim().to_string()).collect(),
                            ),
                            "params" => FieldValue::Params(
                                v.split(';')
                                    .map(str::trim)
                                    .filter(|entry| !entry.is_empty())
                                    .map(|entry| match entry.split_once('=') {
                                        Some((path, value)) => {
                                            Ok((path.trim().to_string(), value.trim().to_string()))
                                        }
                                        None => Err(self
                                            .error(format!("params entry '{entry}' has no '='"))
                                            .with_suggestion(PARAMS_EXAMPLE_CSV)),
                                    })
                                    .collect::<Result<_>>()?,
                            ),
                            _ => FieldValue::Text(v),
                        };
                        Ok((k, value))
                    })
                    .collect()
            }
            Syntax::JsonLines => {
                const ONE_OBJECT_A_LINE: &str = "write each item as one JSON object on a line of \
                    its own, e.g. {\"input\": \"a.wav\", \"output\": \"b.wav\"} (JSON Lines: not \
                    a JSON array, nor an object spread over several lines)";
                let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                    self.error(format!("is not valid JSON ({e})"))
                        .with_suggestion(ONE_OBJECT_A_LINE)
                })?;
                let serde_json::Value::Object(map) = value else {
                    return Err(self
                        .error("is not a JSON object")
                        .with_suggestion(ONE_OBJECT_A_LINE));
                };
                map.into_iter()
                    .map(|(k, v)| {
                        if !FIELDS.contains(&k.as_str()) {
                            return Err(self
                                .error(format!("unknown field '{k}'"))
                                .with_suggestion(format!("the fields are {}", FIELDS.join(", "))));
                        }
                        let value = match v {
                            serde_json::Value::String(s) => FieldValue::Text(s),
                            serde_json::Value::Number(n) if k == "seed" => {
                                FieldValue::Text(n.to_string())
                            }
                            serde_json::Value::Object(entries) if k == "params" => {
                                let pairs = entries
                                    .into_iter()
                                    .map(|(path, v)| match v {
                                        serde_json::Value::Number(n) => Ok((path, n.to_string())),
                                        serde_json::Value::String(text) => Ok((path, text)),
                                        other => Err(self
                                            .error(format!(
                                                "params '{path}' is {other}; give a number or a string"
                                            ))
                                            .with_suggestion(PARAMS_EXAMPLE_JSON)),
                                    })
                                    .collect::<Result<Vec<_>>>()?;
                                FieldValue::Params(pairs)
                            }
                            serde_json::Value::Array(items) if k == "effects" => {
                                let specs = items
                                    .into_iter()
                                    .map(|i| match i {
                                        serde_json::Value::String(s) => Ok(s),
                                        other => Err(self.error(format!(
                                            "'effects' holds {other}, not a spec string"
                                        ))),
                                    })
                                    .collect::<Result<Vec<_>>>()?;
                                FieldValue::List(specs)
                            }
                            other => {
                                return Err(self.error(format!(
                                    "field '{k}' is {other}; it takes {}",
                                    if k == "effects" {
                                        "an array of spec strings"
                                    } else if k == "params" {
                                        "an object of INDEX.PARAMETER paths and values"
                                    } else if k == "seed" {
                                        "a whole number"
                                    } else {
                                        "a string"
                                    }
                                )));
                            }
                        };
                        Ok((k, value))
                    })
                    .collect()
            }
        }
    }

    fn item(&mut self, line: &str) -> Result<ManifestItem> {
        let mut item = ManifestItem {
            line: self.line,
            index: self.index,
            key: String::new(),
            input: PathBuf::new(),
            output: None,
            seed: None,
            chain: None,
            preset: None,
            effects: Vec::new(),
            params: Vec::new(),
        };
        let mut input = None;
        for (name, value) in self.fields(line)? {
            let text = match value {
                FieldValue::List(specs) => {
                    item.effects = specs.into_iter().filter(|s| !s.is_empty()).collect();
                    continue;
                }
                FieldValue::Params(pairs) => {
                    for (path, _) in &pairs {
                        let well_formed = path.split_once('.').is_some_and(|(index, name)| {
                            index.trim().parse::<usize>().is_ok() && !name.trim().is_empty()
                        });
                        if !well_formed {
                            return Err(self
                                .error(format!("params '{path}' is no INDEX.PARAMETER path"))
                                .with_suggestion(
                                    "name a parameter by its effect's place in the item's \
                                     chain (from 0) and its name, e.g. 0.cutoff",
                                ));
                        }
                    }
                    item.params = pairs;
                    continue;
                }
                FieldValue::Text(text) => text,
            };
            match name.as_str() {
                "input" => input = Some(text),
                "output" => item.output = Some(self.base.join(&text)),
                "key" => item.key = text,
                "seed" => {
                    item.seed = Some(text.trim().parse().map_err(|_| {
                        self.error(format!(
                            "seed '{text}' is not a whole number from 0 to 2^64-1"
                        ))
                    })?);
                }
                "chain" => item.chain = Some(self.base.join(&text)),
                "preset" => item.preset = Some(text),
                "effects" => item.effects = vec![text],
                _ => {}
            }
        }
        let Some(input) = input.filter(|i| !i.trim().is_empty()) else {
            return Err(self
                .error("has no input")
                .with_suggestion("give every item an input path"));
        };
        if item.chain.is_some() && item.preset.is_some() {
            return Err(self.error("gives both a chain and a preset; give one"));
        }
        if item.key.is_empty() {
            item.key = input.clone();
        }
        item.input = self.base.join(&input);
        self.index += 1;
        Ok(item)
    }
}

enum FieldValue {
    Text(String),
    List(Vec<String>),
    /// `params`: (path, value) pairs.
    Params(Vec<(String, String)>),
}

impl<R: BufRead> Iterator for Manifest<R> {
    type Item = Result<ManifestItem>;

    fn next(&mut self) -> Option<Self::Item> {
        let line = match self.next_line()? {
            Ok(line) => line,
            Err(e) => return Some(Err(e)),
        };
        Some(self.item(&line))
    }
}

/// Splits one CSV row (RFC 4180: commas, double quotes around cells that hold commas or
/// quotes, `""` for a quote inside).
fn split_csv(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if cell.trim().is_empty() && !was_quoted => {
                cell.clear();
                quoted = true;
                was_quoted = true;
            }
            (',', false) => {
                cells.push(std::mem::take(&mut cell));
                was_quoted = false;
            }
            (c, _) => cell.push(c),
        }
    }
    if quoted {
        return Err("a quoted cell is not closed (cells cannot span lines)".into());
    }
    cells.push(cell);
    Ok(cells.into_iter().map(|c| c.trim().to_string()).collect())
}

/// Which part of a manifest this process renders.
///
/// Items go to shards by their position: item `n` (0-based, counting items, not lines) belongs
/// to shard `n mod N`. Shards are then disjoint, cover the manifest, and differ in size by at
/// most one item, whatever the keys; a stable hash of the keys would balance only on average.
/// (What an item renders depends on its own key and seed, never on its shard.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based shard number.
    pub index: u64,
    /// Shards in all.
    pub count: u64,
}

impl Shard {
    /// Parses `I/N` (0-based: `0/4` to `3/4`), `slurm` (the array task's ID and count from
    /// `SLURM_ARRAY_TASK_ID` and `SLURM_ARRAY_TASK_COUNT` or `_MIN`/`_MAX`) or `k8s`
    /// (`JOB_COMPLETION_INDEX` of an Indexed Job, with `count` from `--shard-count`).
    pub fn parse(text: &str, count: Option<u64>) -> Result<Self> {
        Self::parse_with(text, count, &|name| std::env::var(name).ok())
    }

    /// [`Self::parse`] with the environment given (for tests).
    pub fn parse_with(
        text: &str,
        count: Option<u64>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let bad = |why: String, fix: &str| {
            Err(
                Error::invalid_parameter(format!("Invalid shard: {why}"), "shard", text)
                    .with_suggestion(fix.to_string()),
            )
        };
        let number = |name: &str| -> Result<Option<u64>> {
            match env(name) {
                None => Ok(None),
                Some(v) => v.trim().parse().map(Some).map_err(|_| {
                    Error::invalid_parameter(format!("{name} is not a number"), name, v)
                }),
            }
        };
        let (index, total) = match text {
            "slurm" => {
                let Some(id) = number("SLURM_ARRAY_TASK_ID")? else {
                    return bad(
                        "SLURM_ARRAY_TASK_ID is not set (not inside a Slurm job array)".into(),
                        "submit with sbatch --array=0-N, or give --shard I/N",
                    );
                };
                let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
                let total = match (
                    number("SLURM_ARRAY_TASK_COUNT")?,
                    number("SLURM_ARRAY_TASK_MAX")?,
                ) {
                    (Some(n), _) => n,
                    (None, Some(max)) => max.saturating_sub(min) + 1,
                    (None, None) => {
                        return bad(
                            "neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX is set".into(),
                            "give --shard I/N",
                        );
                    }
                };
                (id.saturating_sub(min), total)
            }
            "k8s" => {
                let Some(id) = number("JOB_COMPLETION_INDEX")? else {
                    return bad(
                        "JOB_COMPLETION_INDEX is not set (not inside an Indexed Job)".into(),
                        "run as a Kubernetes Job with completionMode: Indexed, or give --shard I/N",
                    );
                };
                let Some(total) = count else {
                    return bad(
                        "k8s gives the index but not the count".into(),
                        "add --shard-count N (the Job's completions)",
                    );
                };
                (id, total)
            }
            _ => {
                let Some((i, n)) = text.split_once('/') else {
                    return bad("expected I/N, slurm or k8s".into(), "e.g. --shard 0/4");
                };
                match (i.trim().parse(), n.trim().parse()) {
                    (Ok(i), Ok(n)) => (i, n),
                    _ => return bad("expected I/N, slurm or k8s".into(), "e.g. --shard 0/4"),
                }
            }
        };
        if total == 0 || index >= total {
            return bad(
                format!("shard {index} of {total}: shards are numbered 0 to N-1, N at least 1"),
                "e.g. --shard 0/4 to --shard 3/4",
            );
        }
        Ok(Shard {
            index,
            count: total,
        })
    }

    /// Whether item `index` (0-based among the manifest's items) is this shard's.
    pub fn selects(self, index: u64) -> bool {
        index % self.count == self.index
    }
}

/// Finds outputs named twice in a stream of any length with bounded memory. Up to
/// [`EXACT_OUTPUTS`] outputs their hashes are kept in a set (a few MiB at most, next to
/// nothing for a small manifest); past that they move into a Bloom filter of 2^27 bits
/// (16 MiB), where memory stays flat however long the manifest. An output whose hash was
/// seen before becomes a suspect (in the filter about 0.5 % of 10 million distinct outputs,
/// fewer below), which a second pass confirms or clears exactly.
pub struct DuplicateFilter {
    /// The hashes seen, while there are at most `exact_limit` of them.
    exact: std::collections::HashSet<u64>,
    exact_limit: usize,
    /// The Bloom filter's bits, once the set outgrew its limit (empty before).
    bits: Vec<u64>,
    suspects: std::collections::HashSet<u64>,
}

/// Outputs whose hashes [`DuplicateFilter`] keeps exactly (about 4.5 MiB of set).
pub const EXACT_OUTPUTS: usize = 1 << 18;

impl Default for DuplicateFilter {
    fn default() -> Self {
        DuplicateFilter::with_exact_limit(EXACT_OUTPUTS)
    }
}

/// A stable 64-bit hash of a path.
fn path_hash(path: &Path) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(path.as_os_str().as_encoded_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes)
}

impl DuplicateFilter {
    /// A filter that keeps up to `limit` hashes exactly before it moves to the Bloom filter.
    pub fn with_exact_limit(limit: usize) -> Self {
        DuplicateFilter {
            exact: std::collections::HashSet::new(),
            exact_limit: limit,
            bits: Vec::new(),
            suspects: std::collections::HashSet::new(),
        }
    }

    /// Passes one output through the filter.
    pub fn add(&mut self, output: &Path) {
        let hash = path_hash(output);
        let seen = if self.bits.is_empty() {
            let seen = !self.exact.insert(hash);
            if self.exact.len() > self.exact_limit {
                self.bits = vec![0; (1 << 27) / 64];
                for earlier in std::mem::take(&mut self.exact) {
                    self.mark(earlier);
                }
            }
            seen
        } else {
            self.mark(hash)
        };
        if seen {
            self.suspects.insert(hash);
        }
    }

    /// Sets `hash`'s bits in the Bloom filter; returns whether all were set already.
    fn mark(&mut self, hash: u64) -> bool {
        let bits = (self.bits.len() * 64) as u64;
        let (h1, h2) = (hash & 0xFFFF_FFFF, (hash >> 32) | 1);
        let mut seen = true;
        for k in 0..4 {
            let bit = (h1.wrapping_add(k * h2)) % bits;
            let (word, mask) = ((bit / 64) as usize, 1u64 << (bit % 64));
            seen &= self.bits[word] & mask != 0;
            self.bits[word] |= mask;
        }
        seen
    }

    /// Whether some output may have been named twice (confirm with [`Self::confirm`]).
    pub fn has_suspects(&self) -> bool {
        !self.suspects.is_empty()
    }

    /// The second pass: give every output again in order with its line; returns the first
    /// output named twice, with both lines.
    pub fn confirm<'a>(
        &self,
        outputs: impl Iterator<Item = (u64, std::path::PathBuf)> + 'a,
    ) -> Option<(u64, u64, std::path::PathBuf)> {
        let mut first: std::collections::HashMap<std::path::PathBuf, u64> =
            std::collections::HashMap::new();
        for (line, output) in outputs {
            if !self.suspects.contains(&path_hash(&output)) {
                continue;
            }
            if let Some(&earlier) = first.get(&output) {
                return Some((earlier, line, output));
            }
            first.insert(output, line);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(text: &str, name: &str) -> Result<Vec<ManifestItem>> {
        Manifest::from_reader(text.as_bytes(), name.as_ref(), "/m".as_ref())?.collect()
    }

    #[test]
    fn json_lines_and_csv_give_the_same_items() {
        let json = "{\"input\": \"a b.wav\", \"output\": \"o/a.flac\", \"seed\": 3, \"effects\": [\"gain:0.5\", \"hibutterworth:80,order=2\"]}\n\n{\"input\": \"/abs/c.wav\", \"key\": \"c\", \"preset\": \"Vocal\"}\n";
        let csv = "input,output,seed,effects,key,preset\n\"a b.wav\",o/a.flac,3,\"gain:0.5;hibutterworth:80,order=2\",,\n# a comment\n/abs/c.wav,,,,c,Vocal\n";
        let from_json = items(json, "m.jsonl").unwrap();
        let mut from_csv = items(csv, "m.csv").unwrap();
        // Line numbers differ (the CSV header and comment); the rest is the same.
        for (a, b) in from_json.iter().zip(from_csv.iter_mut()) {
            b.line = a.line;
        }
        assert_eq!(from_json, from_csv);
        assert_eq!(from_json[0].input, Path::new("/m/a b.wav"));
        assert_eq!(from_json[0].key, "a b.wav");
        assert_eq!(
            from_json[0].effects,
            ["gain:0.5", "hibutterworth:80,order=2"]
        );
        assert_eq!(from_json[1].input, Path::new("/abs/c.wav"));
        assert_eq!((from_json[1].index, from_json[1].line), (1, 3));
    }

    #[test]
    fn a_byte_order_mark_and_windows_line_ends_are_read_as_nothing() {
        // What spreadsheet programs write as "CSV UTF-8", and Windows editors as JSON Lines.
        let csv = "\u{feff}input,output\r\na.wav,o/a.wav\r\n";
        let json = "\u{feff}{\"input\": \"a.wav\", \"output\": \"o/a.wav\"}\r\n";
        let (from_csv, from_json) = (
            items(csv, "m.csv").unwrap(),
            items(json, "m.jsonl").unwrap(),
        );
        assert_eq!(from_csv.len(), 1);
        assert_eq!(from_csv[0].input, Path::new("/m/a.wav"));
        assert_eq!(from_csv[0].output.as_deref(), Some(Path::new("/m/o/a.wav")));
        assert_eq!(from_csv[0].key, "a.wav");
        assert_eq!(from_json.len(), 1);
        assert_eq!(
            (&from_json[0].key, &from_json[0].input, &from_json[0].output),
            (&from_csv[0].key, &from_csv[0].input, &from_csv[0].output)
        );
        // Only a mark that starts the file is one: anywhere else it is part of the text.
        let e = items("input\n\u{feff}a.wav,b\n", "m.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2: 2 cells for 1 columns"), "{e}");
    }

    #[test]
    fn a_manifest_must_be_a_regular_file() {
        // It is read twice (every line checked, then rendered): a second read of a pipe would
        // wait for a writer or find nothing.
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("items.csv");
        std::fs::create_dir(&folder).unwrap();
        let e = Manifest::open(&folder).err().unwrap().to_string();
        assert!(
            e.contains("items.csv' is a directory, not a regular file"),
            "{e}"
        );
        assert!(e.contains("reads a manifest twice"), "{e}");
        #[cfg(unix)]
        {
            let fifo = dir.path().join("items.jsonl");
            let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
            // Opening it would wait for a writer: the check must come first.
            let e = Manifest::open(&fifo).err().unwrap().to_string();
            assert!(
                e.contains("items.jsonl' is a FIFO (named pipe), not a regular file"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_line_that_is_not_utf8_asks_for_utf8() {
        // "été.wav" in Latin-1, as older spreadsheet programs save CSV.
        let latin1: &[u8] = b"input,output\n\xe9t\xe9.wav,o.wav\n";
        let e = Manifest::from_reader(latin1, "m.csv".as_ref(), "/m".as_ref())
            .unwrap()
            .collect::<Result<Vec<_>>>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2: is not UTF-8 text"), "{e}");
        assert!(e.contains("save the manifest as UTF-8"), "{e}");
    }

    #[test]
    fn params_override_parameters_by_effect_index_in_json_and_csv() {
        let json = "{\"input\": \"a.wav\", \"params\": {\"0.cutoff\": 150, \"1.gain\": \"uniform(0.2,0.4)\"}}\n";
        let csv = "input,params\na.wav,\"0.cutoff=150; 1.gain=uniform(0.2,0.4)\"\n";
        let (from_json, from_csv) = (
            items(json, "m.jsonl").unwrap(),
            items(csv, "m.csv").unwrap(),
        );
        let want = [
            ("0.cutoff".to_string(), "150".to_string()),
            ("1.gain".to_string(), "uniform(0.2,0.4)".to_string()),
        ];
        assert_eq!(from_json[0].params, want);
        assert_eq!(from_csv[0].params, want);
        for (text, name, says) in [
            (
                "{\"input\": \"a.wav\", \"params\": [1]}\n",
                "m.jsonl",
                "field 'params' is [1]; it takes an object",
            ),
            (
                "{\"input\": \"a.wav\", \"params\": {\"0.cutoff\": true}}\n",
                "m.jsonl",
                "params '0.cutoff' is true; give a number or a string",
            ),
            (
                "{\"input\": \"a.wav\", \"params\": {\"cutoff\": 1}}\n",
                "m.jsonl",
                "params 'cutoff' is no INDEX.PARAMETER path",
            ),
            (
                "input,params\na.wav,0.cutoff\n",
                "m.csv",
                "params entry '0.cutoff' has no '='",
            ),
            (
                "input,params\na.wav,x.cutoff=1\n",
                "m.csv",
                "params 'x.cutoff' is no INDEX.PARAMETER path",
            ),
        ] {
            let e = items(text, name).unwrap_err().to_string();
            assert!(e.contains("line"), "{text:?}: {e}");
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn malformed_lines_are_named_by_number() {
        for (text, name, says) in [
            (
                "{\"input\": \"a.wav\"}\n{\"input\": \"b.wav\",}\n",
                "m.jsonl",
                "line 2: is not valid JSON",
            ),
            (
                "{\"input\": \"a.wav\", \"outptu\": \"x\"}\n",
                "m.jsonl",
                "line 1: unknown field 'outptu'",
            ),
            (
                "{\"output\": \"x.wav\"}\n",
                "m.jsonl",
                "line 1: has no input",
            ),
            (
                "{\"input\": \"a.wav\", \"seed\": -1}\n",
                "m.jsonl",
                "seed '-1'",
            ),
            (
                "input,output\na.wav,b.wav,c\n",
                "m.csv",
                "line 2: 3 cells for 2 columns",
            ),
            ("inptu,output\n", "m.csv", "unknown column 'inptu'"),
            (
                "input\n\"a.wav\n",
                "m.csv",
                "line 2: a quoted cell is not closed",
            ),
            ("x", "m.txt", ".jsonl (JSON Lines) or .csv"),
            // A JSON array, or an object over several lines, is not JSON Lines: say so.
            (
                "[\n{\"input\": \"a.wav\"}\n]\n",
                "m.json",
                "write each item as one JSON object on a line of its own",
            ),
        ] {
            let e = items(text, name).unwrap_err().to_string();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn shards_come_from_the_environment_or_the_command_line() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "4"),
            ("SLURM_ARRAY_TASK_MAX", "7"),
        ]);
        assert_eq!(
            Shard::parse_with("slurm", None, &slurm).unwrap(),
            Shard { index: 1, count: 4 }
        );
        let counted = env(&[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        assert_eq!(
            Shard::parse_with("slurm", None, &counted).unwrap(),
            Shard { index: 2, count: 3 }
        );
        let k8s = env(&[("JOB_COMPLETION_INDEX", "3")]);
        assert_eq!(
            Shard::parse_with("k8s", Some(8), &k8s).unwrap(),
            Shard { index: 3, count: 8 }
        );
        assert!(
            Shard::parse_with("k8s", None, &k8s)
                .unwrap_err()
                .to_string()
                .contains("--shard-count")
        );
        let none = env(&[]);
        assert!(
            Shard::parse_with("slurm", None, &none)
                .unwrap_err()
                .to_string()
                .contains("SLURM_ARRAY_TASK_ID")
        );
        for bad in ["4/4", "1/0", "x", "1-2"] {
            assert!(Shard::parse_with(bad, None, &none).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_duplicate_filter_finds_every_repeat_and_clears_the_rest() {
        // Exactly, and (a limit of 1000) past the move into the Bloom filter, with the repeat
        // after the move of an output seen before it, or both before it.
        for (limit, repeat_at, of) in [
            (EXACT_OUTPUTS, 150_000, 7),
            (1000, 150_000, 7),
            (1000, 900, 3),
        ] {
            let case = format!("limit {limit}, line {} repeats {of}", repeat_at + 1);
            let mut filter = DuplicateFilter::with_exact_limit(limit);
            let outputs: Vec<(u64, PathBuf)> = (0..200_000u64)
                .map(|i| {
                    let n = if i == repeat_at { of } else { i };
                    (i + 1, PathBuf::from(format!("out/{n}.wav")))
                })
                .collect();
            for (_, o) in &outputs {
                filter.add(o);
            }
            assert!(filter.has_suspects(), "{case}");
            assert_eq!(
                filter.confirm(outputs.iter().cloned()),
                Some((
                    of + 1,
                    repeat_at + 1,
                    PathBuf::from(format!("out/{of}.wav"))
                )),
                "{case}"
            );
            let mut clean = DuplicateFilter::with_exact_limit(limit);
            for i in 0..200_000 {
                clean.add(Path::new(&format!("out/{i}.wav")));
            }
            assert_eq!(clean.bits.is_empty(), limit > 200_000, "{case}");
            assert_eq!(
                clean.confirm((0..200_000u64).map(|i| (i, PathBuf::from(format!("out/{i}.wav"))))),
                None,
                "{case}"
            );
        }
    }

    proptest::proptest! {
        /// Every item is in exactly one shard, for any count of shards.
        #[test]
        fn the_shards_partition_the_manifest(items in 1u64..300, count in 1u64..300) {
            let count = count.min(items);
            let mut seen = vec![0u32; items as usize];
            for index in 0..count {
                let shard = Shard { index, count };
                for item in 0..items {
                    if shard.selects(item) {
                        seen[item as usize] += 1;
                    }
                }
            }
            proptest::prop_assert!(seen.iter().all(|&n| n == 1));
        }
    }
}
