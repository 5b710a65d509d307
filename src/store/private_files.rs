//! Files and directories only the gateway's own user may read: the data
//! directory (0700), the database with its `-wal`/`-shm` companions and
//! the mail spool (0600). They hold subscriber data and delivered mail, so
//! the process umask must not decide who reads them: modes are set on
//! creation and tightened (with a warning) when an older start left them
//! wider.

use std::io;
use std::path::Path;

/// Mode of directories holding gateway data.
pub const DIR_MODE: u32 = 0o700;
/// Mode of files holding gateway data.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) owner-only, or tightens an existing
/// one (see [`tighten_logged`]).
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder.create(dir)?;
    // `mode` above passes through the umask; and an existing directory
    // keeps whatever it had.
    tighten_logged(dir, DIR_MODE);
    Ok(())
}

/// Creates `path` empty and owner-only if it does not exist (contents are
/// never touched), or tightens an existing file (see [`tighten_logged`]).
pub fn ensure_file(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    match options.open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    tighten_logged(path, FILE_MODE);
    Ok(())
}

/// [`tighten`], saying so in the log: a warning when an older start (or
/// an operator) had left `path` open to others, an error when it cannot be
/// changed (another owner): the gateway still starts, the operator must
/// fix it.
pub fn tighten_logged(path: &Path, mode: u32) {
    match tighten(path, mode) {
        Ok(false) => {}
        Ok(true) => tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:o}"),
            "was readable by other users; made owner-only"
        ),
        Err(e) => tracing::error!(
            path = %path.display(),
            error = %e,
            "is readable by other users and cannot be made owner-only"
        ),
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
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn new_files_and_dirs_are_owner_only_and_wide_ones_are_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        ensure_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("db");
        ensure_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        assert!(!tighten(&file, FILE_MODE).unwrap(), "nothing to tighten");

        std::fs::write(&file, b"kept").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_file(&file).unwrap();
        ensure_dir(&dir).unwrap();
        assert_eq!((mode(&file), mode(&dir)), (0o600, 0o700));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(
            tighten(&file, FILE_MODE).unwrap(),
            "a group bit is reported"
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"kept", "contents kept");
        assert!(!tighten(&dir.join("missing"), FILE_MODE).unwrap());
    }
}
