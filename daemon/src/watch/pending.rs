//! When a file in a watched folder counts as complete. Pure: the caller passes the time and how
//! to look at a file.
//!
//! Best first: a rename into place or a close after writing (inotify's close-write) says the
//! writer is done; otherwise (other systems, the poll watcher, files found by a scan) the file
//! counts once its size and modification time stayed the same for the rule's settle interval.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Most files one rule keeps track of at once; more are picked up by the next scan.
pub const MAX_PENDING: usize = 100_000;

/// What a notification said of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// Created or written to: it may still be growing.
    Changed,
    /// Renamed into place, or closed after writing.
    Complete,
}

/// A file's size and modification time, as a stat shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    pub mtime_ns: i64,
}

#[derive(Debug)]
struct Entry {
    stat: Option<Stat>,
    /// When `stat` was last seen to change.
    since: Instant,
    complete: bool,
}

#[derive(Debug, Default)]
pub struct Pending {
    entries: HashMap<PathBuf, Entry>,
}

impl Pending {
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A notification about `path`. Answers false when too many files are pending already.
    pub fn saw(&mut self, path: PathBuf, hint: Hint, now: Instant) -> bool {
        if !self.entries.contains_key(&path) && self.entries.len() >= MAX_PENDING {
            return false;
        }
        let entry = self.entries.entry(path).or_insert(Entry {
            stat: None,
            since: now,
            complete: false,
        });
        match hint {
            Hint::Complete => entry.complete = true,
            Hint::Changed => {
                entry.complete = false;
                entry.since = now;
            }
        }
        true
    }

    /// A file a scan found, unchanged for `age` (now minus its modification time). A file seen
    /// before keeps what was known of it.
    pub fn found(&mut self, path: PathBuf, stat: Stat, age: Duration, now: Instant) -> bool {
        if self.entries.contains_key(&path) {
            return true;
        }
        if self.entries.len() >= MAX_PENDING {
            return false;
        }
        self.entries.insert(
            path,
            Entry {
                stat: Some(stat),
                since: now.checked_sub(age).unwrap_or(now),
                complete: false,
            },
        );
        true
    }

    /// Forgets `path` (the rule was paused or removed, or the file is being taken).
    pub fn forget(&mut self, path: &Path) {
        self.entries.remove(path);
    }

    /// Looks at every pending file and answers those that count now, forgetting them; files
    /// that are gone are forgotten, files that changed wait `settle` again.
    pub fn due(
        &mut self,
        now: Instant,
        settle: Duration,
        mut stat: impl FnMut(&Path) -> Option<Stat>,
    ) -> Vec<(PathBuf, Stat)> {
        let mut due = Vec::new();
        self.entries.retain(|path, entry| {
            let Some(current) = stat(path) else {
                return false;
            };
            if entry.complete {
                due.push((path.clone(), current));
                return false;
            }
            if entry.stat != Some(current) {
                entry.stat = Some(current);
                entry.since = now;
                return true;
            }
            if now.duration_since(entry.since) >= settle {
                due.push((path.clone(), current));
                return false;
            }
            true
        });
        due.sort_by(|a, b| a.0.cmp(&b.0));
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLE: Duration = Duration::from_millis(500);

    fn stat(size: u64) -> Stat {
        Stat {
            size,
            mtime_ns: size as i64,
        }
    }

    #[test]
    fn a_rename_or_close_counts_at_once() {
        let t0 = Instant::now();
        let mut pending = Pending::default();
        pending.saw("/d/a.png".into(), Hint::Changed, t0);
        pending.saw("/d/a.png".into(), Hint::Complete, t0);
        let due = pending.due(t0, SETTLE, |_| Some(stat(10)));
        assert_eq!(due, vec![(PathBuf::from("/d/a.png"), stat(10))]);
        assert!(pending.is_empty());
    }

    #[test]
    fn a_growing_file_counts_once_it_stops_growing_for_the_settle_interval() {
        let t0 = Instant::now();
        let mut pending = Pending::default();
        pending.saw("/d/slow.png".into(), Hint::Changed, t0);
        let mut size = 0;
        let mut now = t0;
        // Grows every 200 ms for 3 s: never due while growing.
        for _ in 0..15 {
            size += 100;
            now += Duration::from_millis(200);
            assert!(pending.due(now, SETTLE, |_| Some(stat(size))).is_empty());
        }
        now += Duration::from_millis(400);
        assert!(pending.due(now, SETTLE, |_| Some(stat(size))).is_empty());
        now += Duration::from_millis(100);
        assert_eq!(pending.due(now, SETTLE, |_| Some(stat(size))).len(), 1);
    }

    #[test]
    fn a_write_after_a_close_waits_again_and_a_gone_file_is_forgotten() {
        let t0 = Instant::now();
        let mut pending = Pending::default();
        pending.saw("/d/a.png".into(), Hint::Complete, t0);
        pending.saw("/d/a.png".into(), Hint::Changed, t0);
        assert!(pending.due(t0, SETTLE, |_| Some(stat(1))).is_empty());
        assert_eq!(pending.len(), 1);
        assert!(pending.due(t0 + SETTLE, SETTLE, |_| None).is_empty());
        assert!(pending.is_empty());
    }

    #[test]
    fn files_found_by_a_scan_count_when_old_enough() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut pending = Pending::default();
        pending.found("/d/old.png".into(), stat(5), Duration::from_secs(60), t0);
        pending.found("/d/new.png".into(), stat(6), Duration::ZERO, t0);
        let due = pending.due(t0, SETTLE, |path| {
            Some(if path.ends_with("old.png") {
                stat(5)
            } else {
                stat(6)
            })
        });
        assert_eq!(due, vec![(PathBuf::from("/d/old.png"), stat(5))]);
        assert_eq!(pending.due(t0 + SETTLE, SETTLE, |_| Some(stat(6))).len(), 1);
    }

    #[test]
    fn pending_files_are_bounded() {
        let t0 = Instant::now();
        let mut pending = Pending::default();
        for i in 0..MAX_PENDING {
            assert!(pending.saw(format!("/d/{i}").into(), Hint::Changed, t0));
        }
        assert!(!pending.saw("/d/one-more".into(), Hint::Changed, t0));
        assert!(pending.saw("/d/0".into(), Hint::Complete, t0));
    }
}
