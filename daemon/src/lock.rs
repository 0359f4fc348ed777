//! One daemon per data dir: an exclusive lock on `<data dir>/kromad.lock`, which also records the
//! pid of its holder. The OS releases the lock when the process dies, even on `kill -9`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("kromad is already running for data dir {data_dir} (pid {pid})")]
    Held { data_dir: PathBuf, pid: String },
    #[error("locking {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DataDirLock {
    pub fn acquire(data_dir: &Path, pid: u32) -> Result<DataDirLock, LockError> {
        let path = data_dir.join("kromad.lock");
        let io_error = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let pid = match holder.trim() {
                    "" => "unknown".to_owned(),
                    pid => pid.to_owned(),
                };
                return Err(LockError::Held {
                    data_dir: data_dir.to_owned(),
                    pid,
                });
            }
            Err(TryLockError::Error(err)) => return Err(io_error(err)),
        }
        file.set_len(0).map_err(io_error)?;
        file.seek(SeekFrom::Start(0)).map_err(io_error)?;
        writeln!(file, "{pid}").map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder() {
        let temp = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(temp.path(), 4242).unwrap();
        let err = DataDirLock::acquire(temp.path(), 1).unwrap_err();
        assert!(err.to_string().contains("pid 4242"), "{err}");
        drop(first);
        DataDirLock::acquire(temp.path(), 1).unwrap();
    }
}
