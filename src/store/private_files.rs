//! Files and directories only the gateway's own user may read: the data
//! directory (0700), the database with its `-wal`/`-shm` companions and
//! the mail spool (0600). They hold subscriber data and delivered mail, so
//! the process umask must not decide who reads them: modes are set on
//! creation and tightened when an older start left them wider.

use std::io;
use std::path::Path;

/// Mode of directories holding gateway data.
pub const DIR_MODE: u32 = 0o700;
/// Mode of files holding gateway data.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) owner-only, or tightens an existing
/// one. Returns whether an existing directory was readable by others
/// (the caller warns).
pub fn ensure_dir(dir: &Path) -> io::Result<bool> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    let existed = dir.is_dir();
    builder.create(dir)?;
    // `mode` above passes through the umask; and an existing directory
    // keeps whatever it had.
    let widened = tighten(dir, DIR_MODE)?;
    Ok(existed && widened)
}

/// Creates `path` empty and owner-only if it does not exist (contents are
/// never touched), or tightens an existing file. Returns whether an
/// existing file was readable by others (the caller warns).
pub fn ensure_file(path: &Path) -> io::Result<bool> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    match options.open(path) {
        Ok(_) => {
            tighten(path, FILE_MODE)?;
            Ok(false)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => tighten(path, FILE_MODE),
        Err(e) => Err(e),
    }
}

/// Sets `path` to `mode` when group or others have any access; `false`
/// when it already was owner-only (or does not exist).
pub fn tighten(path: &Path, mode: u32) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if meta.permissions().mode() & 0o077 == 0 {
            return Ok(false);
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        Ok(true)
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(false)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_and_dirs_are_owner_only_and_wide_ones_are_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        assert!(!ensure_dir(&dir).unwrap(), "new: nothing to warn about");
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("db");
        assert!(!ensure_file(&file).unwrap());
        assert_eq!(mode(&file), 0o600);

        std::fs::write(&file, b"kept").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(ensure_file(&file).unwrap(), "a 0644 file is reported");
        assert!(ensure_dir(&dir).unwrap(), "a 0755 directory is reported");
        assert_eq!((mode(&file), mode(&dir)), (0o600, 0o700));
        assert_eq!(std::fs::read(&file).unwrap(), b"kept", "contents kept");
        assert!(!tighten(&dir.join("missing"), FILE_MODE).unwrap());
    }
}
