//! Transfer progress on stderr, only when stderr is a terminal (CI logs stay
//! clean; `--format json` output on stdout is never mixed with it).

use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            enabled: !quiet && std::io::stderr().is_terminal(),
        }
    }

    pub fn disabled() -> Progress {
        Progress { enabled: false }
    }

    /// A status line (e.g. "skipping sha256:… (already there)").
    pub fn note(&self, msg: &str) {
        if self.enabled {
            eprintln!("{msg}");
        }
    }

    pub fn wrap<'a, R: Read + 'a>(
        &self,
        label: String,
        total: u64,
        inner: R,
    ) -> Box<dyn Read + 'a> {
        if !self.enabled {
            return Box::new(inner);
        }
        Box::new(ProgressReader {
            inner,
            label,
            total,
            done: 0,
            last: Instant::now() - Duration::from_secs(1),
            ended: false,
        })
    }
}

struct ProgressReader<R> {
    inner: R,
    label: String,
    total: u64,
    done: u64,
    last: Instant,
    ended: bool,
}

fn mb(n: u64) -> f64 {
    n as f64 / 1_048_576.0
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        let finished = n == 0 || self.done >= self.total;
        if self.ended {
            return Ok(n);
        }
        if finished || self.last.elapsed() > Duration::from_millis(200) {
            self.last = Instant::now();
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r{} {:.1}/{:.1} MB",
                self.label,
                mb(self.done),
                mb(self.total)
            );
            if finished {
                let _ = writeln!(err);
                self.ended = true;
            }
        }
        Ok(n)
    }
}
