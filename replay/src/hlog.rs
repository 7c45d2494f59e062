//! `--hlog FILE`: an HdrHistogram interval log (format 1.3), one line per
//! endpoint per second, tagged with the endpoint name, that HdrHistogram's
//! plotters and `HistogramLogProcessor` read.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;

use crate::Error;

/// Streams interval histograms to a file as the run goes.
pub struct HlogWriter {
    out: BufWriter<File>,
    serializer: V2DeflateSerializer,
    path: String,
}

impl HlogWriter {
    /// Creates the file (0600) and writes the log header.
    pub fn create(path: &Path, start: SystemTime) -> Result<Self, Error> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(path).map_err(io)?;
        let mut w = HlogWriter {
            out: BufWriter::new(file),
            serializer: V2DeflateSerializer::new(),
            path: path.display().to_string(),
        };
        let mut header = Vec::new();
        IntervalLogWriterBuilder::new()
            .add_comment("Logged with tapedeck replay (latency in microseconds, corrected for coordinated omission)")
            .add_comment("[Histogram log format version 1.3]")
            .with_start_time(start)
            .with_base_time(start)
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut header, &mut w.serializer)
            .map_err(io)?;
        header.extend_from_slice(
            b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
        );
        w.out.write_all(&header).map_err(io)?;
        Ok(w)
    }

    /// Writes one interval histogram tagged with the endpoint name
    /// (spaces and commas become `_`, which tags cannot hold).
    pub fn write(
        &mut self,
        endpoint: &str,
        h: &Histogram<u64>,
        start: Duration,
        length: Duration,
    ) -> Result<(), String> {
        let tag_text = tag_for(endpoint);
        let tag = Tag::new(&tag_text);
        let mut line = Vec::new();
        let mut log = IntervalLogWriterBuilder::new()
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut line, &mut self.serializer)
            .map_err(|e| format!("{}: {e}", self.path))?;
        log.write_histogram(h, start, length, tag)
            .map_err(|e| format!("{}: {e}", self.path))?;
        // The divisor comment is repeated by every builder; keep only the data line.
        let text = String::from_utf8_lossy(&line);
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            writeln!(self.out, "{l}").map_err(|e| format!("{}: {e}", self.path))?;
        }
        Ok(())
    }

    /// Flushes buffered lines.
    pub fn flush(&mut self) -> Result<(), String> {
        self.out.flush().map_err(|e| format!("{}: {e}", self.path))
    }
}

/// An interval-log tag for an endpoint name.
pub fn tag_for(endpoint: &str) -> String {
    endpoint
        .chars()
        .map(|c| {
            if matches!(c, ',' | ' ' | '\r' | '\n') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    #[test]
    fn written_log_parses_back_with_tags() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run.hlog");
        let mut w = HlogWriter::create(&p, SystemTime::now()).unwrap();
        let mut h = tapedeck_analyze::report::new_histogram();
        h.record(1500).unwrap();
        h.record(2500).unwrap();
        w.write("Social Feed", &h, Duration::ZERO, Duration::from_secs(1))
            .unwrap();
        w.write("Login", &h, Duration::from_secs(1), Duration::from_secs(1))
            .unwrap();
        w.flush().unwrap();
        let data = std::fs::read(&p).unwrap();
        let text = String::from_utf8_lossy(&data).to_string();
        assert!(
            text.contains("#[Histogram log format version 1.3]"),
            "{text}"
        );
        let tags: Vec<String> = IntervalLogIterator::new(&data)
            .filter_map(|e| match e.unwrap() {
                LogEntry::Interval(i) => Some(i.tag().unwrap().as_str().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(tags, vec!["Social_Feed", "Login"]);
    }
}
