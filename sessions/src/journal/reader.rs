//! The streaming journal reader: decodes frame by frame in constant memory,
//! recovers every intact frame and reports what it had to skip.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::DateTime;
use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};

use crate::model::{ClosingStats, Exchange, JournalHeader, Record, FORMAT_NAME, FORMAT_VERSION};
use crate::Error;

/// The zstd frame magic number, little-endian as it appears in a file.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// Input is read in chunks of this size.
const READ_CHUNK: usize = 128 * 1024;
/// Decoded output grows by at least this much per decode step.
const OUTPUT_STEP: usize = 128 * 1024;
/// A frame's lines are held back until its checksum is verified, unless the
/// frame grows past this; then complete lines are released as they decode,
/// so memory stays bounded for frames written by other tools.
const HOLD_BACK_LIMIT: usize = 8 * 1024 * 1024;
/// A single line longer than this is treated as damage.
const MAX_LINE: usize = 64 * 1024 * 1024;
/// At most this many damaged regions are listed individually.
const MAX_DAMAGE_LISTED: usize = 64;

/// One damaged region of a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Ordinal of the frame (0-based, counting intact and damaged frames).
    pub frame: u64,
    /// Byte offset where the damage starts.
    pub offset: u64,
    /// Bytes skipped to reach the next frame.
    pub skipped: u64,
}

/// What reading one journal file recovered and lost. Complete once the
/// reader has been iterated to the end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadReport {
    /// Intact frames decoded.
    pub frames: u64,
    /// Damaged regions (each a frame or a run of garbage) skipped.
    pub corrupt_frames: u64,
    /// Bytes skipped inside damaged regions.
    pub skipped_bytes: u64,
    /// Bytes of an incomplete last frame (a writer that did not finish).
    pub truncated_tail_bytes: u64,
    /// Lines in intact frames that are not valid records.
    pub bad_lines: u64,
    /// Exchanges recovered.
    pub exchanges: u64,
    /// The closing statistics, present when the writer finished cleanly.
    pub stats: Option<ClosingStats>,
    /// The first damaged regions, in file order (at most 64 are listed).
    pub damage: Vec<Damage>,
    /// True when the header frame was lost and a placeholder header is used.
    pub header_lost: bool,
    /// A read error that ended reading early.
    pub io_error: Option<String>,
}

impl ReadReport {
    /// True when nothing was lost.
    pub fn is_clean(&self) -> bool {
        self.corrupt_frames == 0
            && self.skipped_bytes == 0
            && self.truncated_tail_bytes == 0
            && self.bad_lines == 0
            && !self.header_lost
            && self.io_error.is_none()
    }

    /// One line saying what was lost, e.g. `journal x.jsonl.zst: frame 12 at
    /// byte 81920 is corrupt (skipped 311 bytes); truncated tail of 90 bytes`.
    pub fn describe(&self, path: &Path) -> String {
        let mut parts = Vec::new();
        for d in &self.damage {
            parts.push(format!(
                "frame {} at byte {} is corrupt (skipped {} bytes)",
                d.frame, d.offset, d.skipped
            ));
        }
        if self.corrupt_frames > self.damage.len() as u64 {
            parts.push(format!(
                "{} more corrupt regions ({} bytes skipped in all)",
                self.corrupt_frames - self.damage.len() as u64,
                self.skipped_bytes
            ));
        }
        if self.truncated_tail_bytes > 0 {
            parts.push(format!(
                "truncated tail of {} bytes",
                self.truncated_tail_bytes
            ));
        }
        if self.bad_lines > 0 {
            parts.push(format!("{} unreadable lines", self.bad_lines));
        }
        if self.header_lost {
            parts.push("header frame lost".to_string());
        }
        if let Some(e) = &self.io_error {
            parts.push(format!("read error: {e}"));
        }
        if parts.is_empty() {
            format!(
                "journal {}: clean, {} frames, {} exchanges",
                path.display(),
                self.frames,
                self.exchanges
            )
        } else {
            format!(
                "journal {}: {}; recovered {} exchanges from {} frames",
                path.display(),
                parts.join("; "),
                self.exchanges,
                self.frames
            )
        }
    }
}

trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// Where the reader is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a frame boundary (or in garbage).
    Between,
    /// Decoding the frame that starts at this offset.
    InFrame(u64),
    /// End of file reached.
    Done,
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The decoder rejected it.
    Corrupt,
    /// The file ended inside it.
    Incomplete,
}

/// Reads one journal file as a stream of exchanges. Damaged frames and
/// unparsable lines are counted in [`report`](Self::report), not yielded.
pub struct JournalReader {
    path: PathBuf,
    src: Box<dyn ReadSeek>,
    input: Vec<u8>,
    in_pos: usize,
    in_end: usize,
    /// File offset of `input[0]`.
    in_offset: u64,
    decoder: Decoder<'static>,
    /// Decoded bytes of the current frame.
    frame: Vec<u8>,
    /// Lines before this index may be yielded.
    released: usize,
    /// Next line starts here.
    line_pos: usize,
    /// Decode steps in a row that made no progress.
    stalls: u32,
    /// Where the last damaged region ended.
    last_damage_end: Option<u64>,
    state: State,
    header: JournalHeader,
    report: ReadReport,
}

// === impl JournalReader ===

impl JournalReader {
    /// Opens a journal and reads its header. A missing file, an empty file
    /// or one that is not a journal is an error naming the file.
    pub fn open(path: &Path) -> Result<JournalReader, Error> {
        let file = File::open(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(Error::Invalid {
                path: path.to_path_buf(),
                what: "is a directory, not a journal file".to_string(),
            });
        }
        JournalReader::from_source(path, file)
    }

    /// Reads a journal from any seekable source (`path` names it in messages).
    pub fn from_source<R: Read + Seek + Send + 'static>(
        path: &Path,
        src: R,
    ) -> Result<JournalReader, Error> {
        let invalid = |what: String| Error::Invalid {
            path: path.to_path_buf(),
            what,
        };
        let mut r = JournalReader {
            path: path.to_path_buf(),
            src: Box::new(src),
            input: vec![0; READ_CHUNK],
            in_pos: 0,
            in_end: 0,
            in_offset: 0,
            decoder: Decoder::new().map_err(|e| Error::Io {
                path: path.to_path_buf(),
                source: e,
            })?,
            frame: Vec::new(),
            released: 0,
            line_pos: 0,
            stalls: 0,
            last_damage_end: None,
            state: State::Between,
            header: placeholder_header(),
            report: ReadReport::default(),
        };
        let io_err = |e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        };
        r.fill_to(4).map_err(io_err)?;
        let start = &r.input[..r.in_end];
        if start.is_empty() {
            return Err(invalid("empty file, not a tapedeck journal".to_string()));
        }
        if !start.starts_with(&ZSTD_MAGIC) {
            return Err(invalid(
                "not a tapedeck journal (no zstd frame at byte 0)".to_string(),
            ));
        }
        // The first line must be the header.
        let first = loop {
            if let Some(range) = r.peek_line() {
                break Some(range);
            }
            if r.state == State::Done {
                break None;
            }
            r.advance().map_err(io_err)?;
        };
        let Some((start, end)) = first else {
            return Err(invalid(if r.report.is_clean() {
                "not a tapedeck journal (no lines)".to_string()
            } else {
                format!(
                    "no readable header: {}",
                    r.report.describe(path).split_once(": ").map_or("", |x| x.1)
                )
            }));
        };
        match serde_json::from_slice::<Record>(&r.frame[start..end]) {
            Ok(Record::Header(h)) => {
                if h.format != FORMAT_NAME {
                    return Err(invalid(format!(
                        "not a tapedeck journal (format {:?})",
                        h.format
                    )));
                }
                if h.version > FORMAT_VERSION {
                    return Err(invalid(format!(
                        "journal format version {} is newer than this tapedeck reads ({FORMAT_VERSION})",
                        h.version
                    )));
                }
                r.header = h;
                r.line_pos = end;
                r.skip_newline();
            }
            // The header frame was lost but later frames are intact: keep
            // what can be recovered, and say so.
            Ok(_) if r.report.corrupt_frames > 0 => r.report.header_lost = true,
            Ok(_) => {
                return Err(invalid(
                    "not a tapedeck journal (first line is not a header)".to_string(),
                ))
            }
            Err(e) => {
                return Err(invalid(format!(
                    "not a tapedeck journal (first line is not a journal record: {e})"
                )))
            }
        }
        Ok(r)
    }

    /// The file's header line (a placeholder when `report().header_lost`).
    pub fn header(&self) -> &JournalHeader {
        &self.header
    }

    /// What was recovered and lost; complete after iteration has ended.
    pub fn report(&self) -> &ReadReport {
        &self.report
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn pos(&self) -> u64 {
        self.in_offset + self.in_pos as u64
    }

    /// The next releasable line (without its newline), not consumed.
    fn peek_line(&mut self) -> Option<(usize, usize)> {
        while self.line_pos < self.released {
            let rest = &self.frame[self.line_pos..self.released];
            let end = memchr::memchr(b'\n', rest).map_or(self.released, |i| self.line_pos + i);
            let line = &self.frame[self.line_pos..end];
            // Record lines start with `{`; only other lines need the full check.
            if line.first() != Some(&b'{') && line.iter().all(u8::is_ascii_whitespace) {
                self.line_pos = end;
                self.skip_newline();
                continue;
            }
            return Some((self.line_pos, end));
        }
        None
    }

    fn skip_newline(&mut self) {
        if self.line_pos < self.released && self.frame[self.line_pos] == b'\n' {
            self.line_pos += 1;
        }
    }

    /// Reads until at least `n` bytes are buffered or the file ends.
    fn fill_to(&mut self, n: usize) -> io::Result<()> {
        while self.in_end - self.in_pos < n {
            if self.fill()? == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Moves unread bytes to the front and reads more; 0 at end of file.
    fn fill(&mut self) -> io::Result<usize> {
        if self.in_pos > 0 {
            self.input.copy_within(self.in_pos..self.in_end, 0);
            self.in_offset += self.in_pos as u64;
            self.in_end -= self.in_pos;
            self.in_pos = 0;
        }
        loop {
            match self.src.read(&mut self.input[self.in_end..]) {
                Ok(n) => {
                    self.in_end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn seek(&mut self, to: u64) -> io::Result<()> {
        self.src.seek(SeekFrom::Start(to))?;
        self.in_offset = to;
        self.in_pos = 0;
        self.in_end = 0;
        Ok(())
    }

    /// Decodes until some lines are released or the file ends.
    fn advance(&mut self) -> io::Result<()> {
        // Drop consumed lines.
        if self.line_pos > 0 {
            self.frame.drain(..self.line_pos);
            self.released -= self.line_pos;
            self.line_pos = 0;
        }
        loop {
            match self.state {
                State::Done => return Ok(()),
                State::Between => {
                    self.frame.clear();
                    self.released = 0;
                    self.fill_to(4)?;
                    let avail = self.in_end - self.in_pos;
                    if avail == 0 {
                        self.state = State::Done;
                        return Ok(());
                    }
                    if avail < 4 {
                        // A few stray bytes at the end of the file.
                        self.report.truncated_tail_bytes += avail as u64;
                        self.in_pos = self.in_end;
                        self.state = State::Done;
                        return Ok(());
                    }
                    let start = self.pos();
                    if is_frame_start(&self.input[self.in_pos..self.in_pos + 4]) {
                        self.decoder.reinit()?;
                        self.stalls = 0;
                        self.state = State::InFrame(start);
                    } else {
                        self.skip_damage(start, Failure::Corrupt)?;
                    }
                }
                State::InFrame(start) => {
                    if self.in_pos == self.in_end && self.fill()? == 0 {
                        self.skip_damage(start, Failure::Incomplete)?;
                        continue;
                    }
                    // Decode straight into the frame buffer's spare capacity.
                    self.frame.reserve(OUTPUT_STEP);
                    let before = self.frame.len();
                    let mut input = InBuffer::around(&self.input[self.in_pos..self.in_end]);
                    let mut output = OutBuffer::around_pos(&mut self.frame, before);
                    let result = self.decoder.run(&mut input, &mut output);
                    let written = output.pos() - before;
                    let read = input.pos();
                    let remaining = match result {
                        Ok(r) => r,
                        Err(_) => {
                            self.skip_damage(start, Failure::Corrupt)?;
                            continue;
                        }
                    };
                    self.in_pos += read;
                    if remaining == 0 {
                        self.report.frames += 1;
                        self.released = self.frame.len();
                        self.state = State::Between;
                        if self.released > 0 {
                            return Ok(());
                        }
                        continue;
                    }
                    if read == 0 && written == 0 {
                        self.stalls += 1;
                        if self.stalls > 2 {
                            self.skip_damage(start, Failure::Corrupt)?;
                        }
                        continue;
                    }
                    self.stalls = 0;
                    let held = self.frame.len() - self.released;
                    if held > HOLD_BACK_LIMIT {
                        match self.frame[self.released..]
                            .iter()
                            .rposition(|&b| b == b'\n')
                        {
                            Some(i) => {
                                self.released += i + 1;
                                return Ok(());
                            }
                            None if held > MAX_LINE => {
                                self.skip_damage(start, Failure::Corrupt)?;
                            }
                            None => {}
                        }
                    }
                }
            }
        }
    }

    /// Records damage starting at `start` and moves to the next frame magic
    /// after it (or to the end of the file).
    fn skip_damage(&mut self, start: u64, failure: Failure) -> io::Result<()> {
        // Lines of the damaged frame not yet released are lost with it.
        self.frame.truncate(self.released);
        self.seek(start + 1)?;
        let next = self.scan_magic()?;
        self.state = State::Between;
        let end = next.unwrap_or_else(|| self.pos());
        if next.is_none() && failure == Failure::Incomplete {
            self.report.truncated_tail_bytes += end - start;
            self.state = State::Done;
            return Ok(());
        }
        let skipped = end - start;
        self.report.skipped_bytes += skipped;
        // Damage right after damage is one region, not many.
        let adjacent = self.last_damage_end == Some(start);
        self.last_damage_end = Some(end);
        if adjacent {
            if let Some(last) = self.report.damage.last_mut() {
                if last.offset + last.skipped == start {
                    last.skipped += skipped;
                }
            }
        } else {
            let frame = self.report.frames + self.report.corrupt_frames;
            self.report.corrupt_frames += 1;
            if self.report.damage.len() < MAX_DAMAGE_LISTED {
                self.report.damage.push(Damage {
                    frame,
                    offset: start,
                    skipped,
                });
            }
        }
        if next.is_none() {
            self.state = State::Done;
        }
        Ok(())
    }

    /// Advances to the next zstd frame magic; `None` at end of file.
    fn scan_magic(&mut self) -> io::Result<Option<u64>> {
        loop {
            let window = &self.input[self.in_pos..self.in_end];
            if let Some(i) = memchr::memmem::find(window, &ZSTD_MAGIC) {
                self.in_pos += i;
                return Ok(Some(self.pos()));
            }
            // Keep the last 3 bytes: a magic may straddle two reads.
            self.in_pos = self.in_end.saturating_sub(3).max(self.in_pos);
            if self.fill()? == 0 {
                self.in_pos = self.in_end;
                return Ok(None);
            }
        }
    }
}

impl Iterator for JournalReader {
    type Item = Exchange;

    fn next(&mut self) -> Option<Exchange> {
        loop {
            if let Some((start, end)) = self.peek_line() {
                self.line_pos = end;
                self.skip_newline();
                match parse_line(&self.frame[start..end]) {
                    Some(Record::Exchange(ex)) => {
                        self.report.exchanges += 1;
                        return Some(ex);
                    }
                    Some(Record::Stats(s)) => self.report.stats = Some(s),
                    // Concatenated journals carry more headers; nothing to do.
                    Some(Record::Header(_)) => {}
                    None => self.report.bad_lines += 1,
                }
                continue;
            }
            if self.state == State::Done {
                return None;
            }
            if let Err(e) = self.advance() {
                self.report.io_error = Some(e.to_string());
                self.state = State::Done;
            }
        }
    }
}

impl std::fmt::Debug for JournalReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalReader")
            .field("path", &self.path)
            .field("header", &self.header)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

fn parse_line(line: &[u8]) -> Option<Record> {
    // Fast path: exchange lines deserialize straight into `Exchange` (the
    // `type` field is ignored), skipping the tagged-enum buffering.
    if line.starts_with(b"{\"type\":\"exchange\",") {
        return serde_json::from_slice::<Exchange>(line)
            .ok()
            .map(Record::Exchange);
    }
    serde_json::from_slice::<Record>(line).ok()
}

/// A zstd frame or a zstd skippable frame starts with these four bytes.
fn is_frame_start(b: &[u8]) -> bool {
    b == ZSTD_MAGIC || (b[0] & 0xF0 == 0x50 && b[1..4] == [0x2A, 0x4D, 0x18])
}

fn placeholder_header() -> JournalHeader {
    JournalHeader {
        format: FORMAT_NAME.to_string(),
        version: FORMAT_VERSION,
        created: DateTime::UNIX_EPOCH,
        upstream: String::new(),
        tool: "unknown (header frame lost)".to_string(),
    }
}
