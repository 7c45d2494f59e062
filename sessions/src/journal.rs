//! Journals (`*.jsonl.zst`): writing, streaming reads with recovery, and
//! reading whole sets of rotated files.
//!
//! A journal is a concatenation of independent zstd frames, each holding
//! whole JSON lines (see [`crate::model::Record`]). The writer closes a frame
//! every `flush_every` and every `frame_bytes`, so a crash loses at most the
//! frame being written; the reader decodes each frame on its own, resyncs at
//! the next frame magic after a damaged one, and counts what it had to skip.

use std::path::{Path, PathBuf};

use crate::model::{Exchange, JournalHeader};
use crate::Error;

mod reader;
mod writer;

pub use reader::{Damage, JournalReader, ReadReport};
pub use writer::{JournalWriter, WriterOptions, WriterSummary};

/// The file name suffix of journals.
pub const JOURNAL_SUFFIX: &str = ".jsonl.zst";

/// Expands command-line arguments into journal files: a directory stands for
/// its `*.jsonl.zst` files in name order (which is time order for files the
/// writer created); a file stands for itself.
pub fn expand_paths(args: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for arg in args {
        if arg.is_dir() {
            let entries = std::fs::read_dir(arg).map_err(|e| Error::Io {
                path: arg.clone(),
                source: e,
            })?;
            let mut found = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| Error::Io {
                    path: arg.clone(),
                    source: e,
                })?;
                let name = entry.file_name();
                if name.to_string_lossy().ends_with(JOURNAL_SUFFIX) && entry.path().is_file() {
                    found.push(entry.path());
                }
            }
            if found.is_empty() {
                return Err(Error::Invalid {
                    path: arg.clone(),
                    what: format!("directory holds no *{JOURNAL_SUFFIX} journals"),
                });
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(arg.clone());
        }
    }
    if out.is_empty() {
        return Err(Error::Usage("no journal given".to_string()));
    }
    Ok(out)
}

/// Every exchange of a set of journals, with what was learned reading each file.
#[derive(Debug, Clone)]
pub struct Journals {
    /// All exchanges, sorted by `(started, id)`.
    pub exchanges: Vec<Exchange>,
    /// One entry per file read, in the order given.
    pub files: Vec<JournalFile>,
}

/// One journal file as read.
#[derive(Debug, Clone)]
pub struct JournalFile {
    /// The file.
    pub path: PathBuf,
    /// Its header line.
    pub header: JournalHeader,
    /// What was recovered and lost.
    pub report: ReadReport,
}

impl Journals {
    /// The files that were damaged (anything lost or skipped).
    pub fn damaged(&self) -> impl Iterator<Item = &JournalFile> {
        self.files.iter().filter(|f| !f.report.is_clean())
    }

    /// One line per damaged file, for a warning on stderr.
    pub fn warnings(&self) -> Vec<String> {
        self.damaged().map(|f| f.report.describe(&f.path)).collect()
    }

    /// The upstream recorded in the first file's header.
    pub fn upstream(&self) -> Option<&str> {
        self.files.first().map(|f| f.header.upstream.as_str())
    }
}

/// Reads every exchange of `paths` (files, as given; see [`expand_paths`] for
/// directories). Damaged files are read as far as they can be; only a file
/// that cannot be opened or is not a journal is an error. Exchanges of a
/// file whose header names another upstream than the first file's get that
/// upstream in `Exchange::upstream`.
pub fn read_all(paths: &[PathBuf]) -> Result<Journals, Error> {
    let mut exchanges = Vec::new();
    let mut files = Vec::with_capacity(paths.len());
    let mut first_upstream: Option<String> = None;
    for path in paths {
        let mut reader = JournalReader::open(path)?;
        let upstream = reader.header().upstream.clone();
        let first = first_upstream.get_or_insert_with(|| upstream.clone());
        if *first == upstream || reader.report().header_lost {
            exchanges.extend(reader.by_ref());
        } else {
            // Merged sets keep each exchange's origin: a file recorded in
            // front of another upstream marks its exchanges with it.
            exchanges.extend(reader.by_ref().map(|mut e| {
                e.upstream.get_or_insert_with(|| upstream.clone());
                e
            }));
        }
        files.push(JournalFile {
            path: path.clone(),
            header: reader.header().clone(),
            report: reader.report().clone(),
        });
    }
    exchanges.sort_by_key(|e: &Exchange| (e.started, e.id));
    Ok(Journals { exchanges, files })
}

/// Writes a whole file readable by its owner only (0600), replacing it.
pub(crate) fn write_private(path: &Path, data: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let mut f = writer::create_private(path, false)?;
    f.write_all(data).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Reads one file's exchanges (convenience over [`read_all`]).
pub fn read_file(path: &Path) -> Result<Journals, Error> {
    read_all(&[path.to_path_buf()])
}

#[cfg(test)]
mod tests;
