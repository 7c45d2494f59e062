//! The journal writer: JSON lines into independent zstd frames, rotated
//! files, 0600 permissions.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use zstd::zstd_safe::CParameter;

use crate::model::{ClosingStats, Exchange, JournalHeader, Record};
use crate::Error;

/// How a [`JournalWriter`] names, frames and rotates its files.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Directory the files go in (created if missing).
    pub dir: PathBuf,
    /// File name prefix (`capture` → `capture-20261126T101500.123Z-0000.jsonl.zst`).
    pub prefix: String,
    /// Written in every file's header.
    pub upstream: String,
    /// Start a new file once the current one reaches this many bytes.
    pub rotate_size: Option<u64>,
    /// Start a new file once the current one is this old.
    pub rotate_every: Option<Duration>,
    /// Close the open frame once its first line is this old (see [`JournalWriter::tick`]).
    pub flush_every: Duration,
    /// Close the open frame once it holds this many uncompressed bytes.
    pub frame_bytes: usize,
    /// zstd compression level.
    pub level: i32,
}

impl WriterOptions {
    /// Defaults: prefix `capture`, rotate at 256 MiB, no time rotation,
    /// frames closed every second or 256 KiB, zstd level 3.
    pub fn new(dir: impl Into<PathBuf>, upstream: impl Into<String>) -> Self {
        WriterOptions {
            dir: dir.into(),
            prefix: "capture".to_string(),
            upstream: upstream.into(),
            rotate_size: Some(256 * 1024 * 1024),
            rotate_every: None,
            flush_every: Duration::from_secs(1),
            frame_bytes: 256 * 1024,
            level: 3,
        }
    }
}

/// What a finished writer wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriterSummary {
    /// Every file created, in order.
    pub files: Vec<PathBuf>,
    /// Exchanges written.
    pub exchanges: u64,
    /// Compressed bytes written (all files).
    pub bytes_written: u64,
    /// Exchanges the caller reported as dropped.
    pub dropped: u64,
}

/// Where the writer puts its files.
#[derive(Debug)]
enum Target {
    /// A directory of rotated files.
    Rotating,
    /// Exactly this file, never rotated.
    Single(PathBuf),
}

/// The file being written.
#[derive(Debug)]
struct OpenFile {
    path: PathBuf,
    file: File,
    opened: Instant,
    bytes: u64,
    exchanges: u64,
}

/// Writes exchanges to journal files. Not thread-safe by design: the capture
/// proxy owns one writer in a dedicated task and feeds it over a channel.
pub struct JournalWriter {
    opts: WriterOptions,
    target: Target,
    current: Option<OpenFile>,
    files: Vec<PathBuf>,
    seq: u32,
    /// Uncompressed lines of the open frame.
    frame: Vec<u8>,
    /// When the first line of the open frame was added.
    frame_started: Option<Instant>,
    compressor: zstd::bulk::Compressor<'static>,
    compressed: Vec<u8>,
    exchanges: u64,
    bytes_written: u64,
    dropped: u64,
    dropped_unreported: u64,
    finished: bool,
}

// === impl JournalWriter ===

impl JournalWriter {
    /// Creates `opts.dir` if needed and opens the first file (header frame
    /// written at once, so a journal is readable from its first moment).
    pub fn create(opts: WriterOptions) -> Result<JournalWriter, Error> {
        std::fs::create_dir_all(&opts.dir).map_err(|e| Error::Io {
            path: opts.dir.clone(),
            source: e,
        })?;
        if opts.prefix.is_empty() || opts.prefix.contains(['/', '\\']) {
            return Err(Error::Usage(format!(
                "journal prefix {:?} must be a non-empty file name part",
                opts.prefix
            )));
        }
        let mut w = JournalWriter::new(opts, Target::Rotating)?;
        w.open_next()?;
        Ok(w)
    }

    /// Writes exactly one file at `path` (no rotation; the parent directory
    /// must exist). Frames close at the default size; call [`flush`](Self::flush)
    /// or [`tick`](Self::tick) to close them sooner.
    pub fn create_file(path: &Path, upstream: &str) -> Result<JournalWriter, Error> {
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut opts = WriterOptions::new(dir, upstream);
        opts.rotate_size = None;
        let mut w = JournalWriter::new(opts, Target::Single(path.to_path_buf()))?;
        w.open_next()?;
        Ok(w)
    }

    /// Like [`create_file`](Self::create_file) with explicit frame and level
    /// settings (`opts.dir`, `prefix` and rotation are ignored).
    pub fn create_file_with(path: &Path, opts: WriterOptions) -> Result<JournalWriter, Error> {
        let mut w = JournalWriter::new(opts, Target::Single(path.to_path_buf()))?;
        w.open_next()?;
        Ok(w)
    }

    fn new(opts: WriterOptions, target: Target) -> Result<JournalWriter, Error> {
        let io_err = |e| Error::Io {
            path: opts.dir.clone(),
            source: e,
        };
        let mut compressor = zstd::bulk::Compressor::new(opts.level).map_err(io_err)?;
        // The checksum lets the reader reject a frame with flipped bytes
        // instead of yielding altered exchanges.
        compressor
            .set_parameter(CParameter::ChecksumFlag(true))
            .map_err(io_err)?;
        compressor
            .set_parameter(CParameter::ContentSizeFlag(true))
            .map_err(io_err)?;
        Ok(JournalWriter {
            frame: Vec::with_capacity(opts.frame_bytes.min(4 << 20) + 4096),
            opts,
            target,
            current: None,
            files: Vec::new(),
            seq: 0,
            frame_started: None,
            compressor,
            compressed: Vec::new(),
            exchanges: 0,
            bytes_written: 0,
            dropped: 0,
            dropped_unreported: 0,
            finished: false,
        })
    }

    /// Appends one exchange. Closes the frame once it reaches `frame_bytes`
    /// and rotates once the file reaches `rotate_size`.
    pub fn write(&mut self, ex: &Exchange) -> Result<(), Error> {
        if self.current.is_none() {
            self.open_next()?;
        }
        // Write the record tag, then the exchange object with its opening
        // `{` turned into a `,`: the same line as `Record::Exchange`, without
        // cloning the exchange or copying the line.
        if self.frame.is_empty() {
            self.frame_started = Some(Instant::now());
        }
        let line_start = self.frame.len();
        self.frame.extend_from_slice(b"{\"type\":\"exchange\"");
        let object_start = self.frame.len();
        if let Err(e) = serde_json::to_writer(&mut self.frame, ex) {
            self.frame.truncate(line_start);
            return Err(self.invalid(e));
        }
        debug_assert_eq!(self.frame.get(object_start), Some(&b'{'));
        self.frame[object_start] = b',';
        self.frame.push(b'\n');
        self.exchanges += 1;
        if let Some(f) = self.current.as_mut() {
            f.exchanges += 1;
        }
        if self.frame.len() >= self.opts.frame_bytes {
            self.close_frame()?;
            self.rotate_if_due()?;
        }
        Ok(())
    }

    /// Closes the open frame if its first line is older than `flush_every`,
    /// and rotates when `rotate_every` has passed. Call it from a timer.
    pub fn tick(&mut self) -> Result<(), Error> {
        if self
            .frame_started
            .is_some_and(|t| t.elapsed() >= self.opts.flush_every)
        {
            self.close_frame()?;
        }
        self.rotate_if_due()
    }

    /// Closes the open frame now, so everything written so far is readable.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.close_frame()
    }

    /// Counts exchanges the caller had to drop (written in the closing stats).
    pub fn add_dropped(&mut self, n: u64) {
        self.dropped += n;
        self.dropped_unreported += n;
    }

    /// Files created so far, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Exchanges written so far.
    pub fn exchanges(&self) -> u64 {
        self.exchanges
    }

    /// Writes the closing `stats` line, closes the frame and syncs the file.
    pub fn finish(mut self) -> Result<WriterSummary, Error> {
        self.finished = true;
        self.close_file()?;
        Ok(WriterSummary {
            files: std::mem::take(&mut self.files),
            exchanges: self.exchanges,
            bytes_written: self.bytes_written,
            dropped: self.dropped,
        })
    }

    fn rotate_if_due(&mut self) -> Result<(), Error> {
        if !matches!(self.target, Target::Rotating) {
            return Ok(());
        }
        let Some(f) = self.current.as_ref() else {
            return Ok(());
        };
        if f.exchanges == 0 {
            return Ok(());
        }
        let by_size = self.opts.rotate_size.is_some_and(|max| f.bytes >= max);
        let by_age = self
            .opts
            .rotate_every
            .is_some_and(|every| f.opened.elapsed() >= every);
        if by_size || by_age {
            // The next file is opened by the next write, so an idle capture
            // does not leave a trail of empty files.
            self.close_file()?;
        }
        Ok(())
    }

    fn open_next(&mut self) -> Result<(), Error> {
        let (path, file) = match &self.target {
            Target::Single(path) => {
                if !self.files.is_empty() {
                    return Err(Error::Invalid {
                        path: path.clone(),
                        what: "journal already finished".to_string(),
                    });
                }
                (path.clone(), create_private(path, false)?)
            }
            Target::Rotating => {
                // `create_new` never overwrites; a name collision (two writers
                // in the same directory and millisecond) moves to the next seq.
                let mut attempt = 0;
                loop {
                    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
                    let name = format!(
                        "{}-{stamp}-{:04}{}",
                        self.opts.prefix,
                        self.seq,
                        super::JOURNAL_SUFFIX
                    );
                    let path = self.opts.dir.join(name);
                    self.seq += 1;
                    match create_private(&path, true) {
                        Ok(f) => break (path, f),
                        Err(Error::Io { source, .. })
                            if source.kind() == std::io::ErrorKind::AlreadyExists
                                && attempt < 100 =>
                        {
                            attempt += 1;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        self.files.push(path.clone());
        self.current = Some(OpenFile {
            path,
            file,
            opened: Instant::now(),
            bytes: 0,
            exchanges: 0,
        });
        let header = Record::Header(JournalHeader::new(self.opts.upstream.clone()));
        self.push_record(&header)?;
        // The header gets a frame of its own: the file is a valid journal even
        // if the process dies before the first exchange frame is closed.
        self.close_frame()
    }

    fn close_file(&mut self) -> Result<(), Error> {
        if self.current.is_none() {
            return Ok(());
        }
        let exchanges = self.current.as_ref().map_or(0, |f| f.exchanges);
        let stats = Record::Stats(ClosingStats {
            exchanges,
            dropped: std::mem::take(&mut self.dropped_unreported),
            closed: Utc::now(),
        });
        self.push_record(&stats)?;
        self.close_frame()?;
        let f = self
            .current
            .take()
            .expect("checked above that a file is open");
        f.file.sync_all().map_err(|e| Error::Io {
            path: f.path.clone(),
            source: e,
        })
    }

    fn push_record(&mut self, rec: &Record) -> Result<(), Error> {
        if self.frame.is_empty() {
            self.frame_started = Some(Instant::now());
        }
        serde_json::to_writer(&mut self.frame, rec).map_err(|e| self.invalid(e))?;
        self.frame.push(b'\n');
        Ok(())
    }

    fn close_frame(&mut self) -> Result<(), Error> {
        self.frame_started = None;
        if self.frame.is_empty() {
            return Ok(());
        }
        let Some(f) = self.current.as_mut() else {
            // Nothing to write into: only reachable after a failed open.
            self.frame.clear();
            return Ok(());
        };
        self.compressed.clear();
        self.compressed
            .reserve(zstd::zstd_safe::compress_bound(self.frame.len()));
        let result = self
            .compressor
            .compress_to_buffer(&self.frame, &mut self.compressed)
            .and_then(|_| f.file.write_all(&self.compressed));
        self.frame.clear();
        if self.frame.capacity() > 8 * self.opts.frame_bytes.max(64 * 1024) {
            // One huge exchange should not pin its buffer forever.
            self.frame.shrink_to(self.opts.frame_bytes);
        }
        result.map_err(|e| Error::Io {
            path: f.path.clone(),
            source: e,
        })?;
        f.bytes += self.compressed.len() as u64;
        self.bytes_written += self.compressed.len() as u64;
        Ok(())
    }

    fn invalid(&self, e: serde_json::Error) -> Error {
        Error::Invalid {
            path: self
                .current
                .as_ref()
                .map_or_else(|| self.opts.dir.clone(), |f| f.path.clone()),
            what: format!("cannot encode record: {e}"),
        }
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        if !self.finished {
            // Best effort: whatever was written becomes readable. No stats
            // line, so readers can tell the file was not finished cleanly.
            let _ = self.close_frame();
        }
    }
}

impl std::fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalWriter")
            .field("files", &self.files)
            .field("exchanges", &self.exchanges)
            .field("bytes_written", &self.bytes_written)
            .finish_non_exhaustive()
    }
}

/// Creates a file readable and writable by its owner only.
pub(crate) fn create_private(path: &Path, create_new: bool) -> Result<File, Error> {
    let mut oo = std::fs::OpenOptions::new();
    oo.write(true);
    if create_new {
        oo.create_new(true);
    } else {
        oo.create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        oo.mode(0o600);
    }
    let file = oo.open(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    // `mode` only applies to new files; an existing file truncated for
    // `create_file` keeps its old mode unless set here.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::Io {
                path: path.to_path_buf(),
                source: e,
            })?;
    }
    Ok(file)
}
