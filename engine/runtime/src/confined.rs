//! Files written below an operator's root without following symbolic
//! links: the one way stepline creates, replaces or moves a file in a
//! directory a definition or a trigger chooses a path in (a ResultWriter
//! bucket, a file trigger's `processed/` and `failed/`).
//!
//! Every component below the root is looked at with `symlink_metadata` and
//! refused when it is a link; missing directories are created one at a
//! time and looked at again; files are created with `create_new` and
//! `O_NOFOLLOW`, so a link planted at the file's own name is refused by
//! the kernel rather than followed. A file that replaces another is
//! written to a new temporary file and renamed over it: a rename replaces
//! a link itself, never what it points to.
//!
//! What remains (std has no `openat` walk without `unsafe`, which the
//! workspace forbids): someone who can write in the root and swaps a
//! checked directory for a link between the walk and the open can make
//! the open land outside. After each create the path is walked again and
//! compared with the opened file (device and inode); on a mismatch the
//! file is closed before anything is written to it and the call fails, so
//! such a race leaves at most an empty file, never data, outside the root.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a path below a root was refused or could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ConfinedError {
    #[error("'{}' is not a plain relative path (no '..', no leading '/')", path.display())]
    NotPlain { path: PathBuf },
    #[error("'{}' is a symbolic link: stepline never follows links below '{}'", path.display(), root.display())]
    Link { path: PathBuf, root: PathBuf },
    #[error("'{}' is in the way: it is not a directory", path.display())]
    NotDirectory { path: PathBuf },
    #[error("'{}' already exists", path.display())]
    Exists { path: PathBuf },
    #[error("'{}' changed while it was being created (a directory on the way was replaced)", path.display())]
    Moved { path: PathBuf },
    #[error("cannot {action} '{}': {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_error<'p>(
    action: &'static str,
    path: &'p Path,
) -> impl FnOnce(io::Error) -> ConfinedError + 'p {
    move |source| ConfinedError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// A directory files are confined to, canonical (its own symbolic links,
/// which the operator chose, resolved once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// `dir`, canonicalised; it must be a directory.
    pub fn new(dir: &Path) -> Result<Self, ConfinedError> {
        let dir = dir.canonicalize().map_err(io_error("open", dir))?;
        if !dir.is_dir() {
            return Err(ConfinedError::NotDirectory { path: dir });
        }
        Ok(Self { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The directories of `relative` (itself a directory path), each
    /// created when missing; refused when one is a link or not a directory.
    pub fn create_dirs(&self, relative: &Path) -> Result<PathBuf, ConfinedError> {
        let parts = plain_parts(relative)?;
        let mut path = self.dir.clone();
        for part in parts {
            path.push(part);
            self.directory_at(&path, true)?;
        }
        Ok(path)
    }

    /// A new file at `relative`, its parent directories created as
    /// [`Root::create_dirs`] does; refused when anything (a link included)
    /// is already there.
    pub fn create_new(&self, relative: &Path) -> Result<(File, PathBuf), ConfinedError> {
        let (parent, name) = split_file(relative)?;
        let dir = self.create_dirs(parent)?;
        let path = dir.join(name);
        let file = open_new(&self.dir, &path)?;
        self.verify(&path, &file)?;
        Ok((file, path))
    }

    /// A new temporary file beside `relative` (hidden, unique), to be
    /// renamed over it with [`Root::replace_with`] once written.
    pub fn create_temporary(&self, relative: &Path) -> Result<(File, PathBuf), ConfinedError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let (parent, name) = split_file(relative)?;
        let dir = self.create_dirs(parent)?;
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(
                ".{}.{}-{n}.tmp",
                name.to_string_lossy(),
                std::process::id()
            ));
            match open_new(&self.dir, &path) {
                Ok(file) => {
                    self.verify(&path, &file)?;
                    return Ok((file, path));
                }
                Err(ConfinedError::Exists { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Renames `from` (a file written by [`Root::create_temporary`]) to
    /// `relative`, replacing a regular file there. A link (or a directory)
    /// at `relative` is refused; one planted after that check is replaced
    /// by the rename, never followed.
    pub fn replace_with(&self, from: &Path, relative: &Path) -> Result<PathBuf, ConfinedError> {
        let (parent, name) = split_file(relative)?;
        let dir = self.create_dirs(parent)?;
        let to = dir.join(name);
        match std::fs::symlink_metadata(&to) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(self.link(&to));
            }
            Ok(meta) if !meta.file_type().is_file() => {
                return Err(ConfinedError::Exists { path: to });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("look at", &to)(e)),
        }
        std::fs::rename(from, &to).map_err(io_error("rename into", &to))?;
        Ok(to)
    }

    /// Writes `contents` to `relative` whole, replacing a regular file
    /// there (through a temporary file and a rename).
    pub fn write(&self, relative: &Path, contents: &[u8]) -> Result<PathBuf, ConfinedError> {
        let (mut file, temporary) = self.create_temporary(relative)?;
        let written = file
            .write_all(contents)
            .and_then(|()| file.sync_all())
            .map_err(io_error("write", &temporary))
            .and_then(|()| self.replace_with(&temporary, relative));
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written
    }

    /// Moves `from` (an entry of a checked directory) to `relative`, its
    /// directories created as [`Root::create_dirs`] does. Nothing already
    /// at `relative` is replaced.
    pub fn move_into(&self, from: &Path, relative: &Path) -> Result<PathBuf, ConfinedError> {
        let (parent, name) = split_file(relative)?;
        let dir = self.create_dirs(parent)?;
        let to = dir.join(name);
        match std::fs::symlink_metadata(&to) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(self.link(&to)),
            Ok(_) => return Err(ConfinedError::Exists { path: to }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("look at", &to)(e)),
        }
        // The directory was checked just above; a link swapped in for it
        // since is the race the module's documentation describes.
        self.directory_at(&dir, false)?;
        std::fs::rename(from, &to).map_err(io_error("move into", &to))?;
        Ok(to)
    }

    /// Checks (and with `create`, makes) the directory at `path`.
    fn directory_at(&self, path: &Path, create: bool) -> Result<(), ConfinedError> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => Err(self.link(path)),
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(ConfinedError::NotDirectory {
                path: path.to_owned(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                match std::fs::create_dir(path) {
                    Ok(()) => {}
                    // Made by someone else meanwhile: looked at below.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io_error("create", path)(e)),
                }
                self.directory_at(path, false)
            }
            Err(e) => Err(io_error("look at", path)(e)),
        }
    }

    /// The file just opened at `path` is still what `path` names when
    /// walked without links (nothing on the way was swapped since).
    fn verify(&self, path: &Path, file: &File) -> Result<(), ConfinedError> {
        let relative = path
            .strip_prefix(&self.dir)
            .map_err(|_| ConfinedError::Moved {
                path: path.to_owned(),
            })?;
        let mut walked = self.dir.clone();
        let parts = plain_parts(relative)?;
        let last = parts.len().saturating_sub(1);
        for (i, part) in parts.into_iter().enumerate() {
            walked.push(part);
            if i < last {
                self.directory_at(&walked, false)?;
            }
        }
        let named = std::fs::symlink_metadata(&walked).map_err(io_error("look at", path))?;
        let opened = file.metadata().map_err(io_error("look at", path))?;
        if named.file_type().is_symlink()
            || named.dev() != opened.dev()
            || named.ino() != opened.ino()
        {
            return Err(ConfinedError::Moved {
                path: path.to_owned(),
            });
        }
        Ok(())
    }

    fn link(&self, path: &Path) -> ConfinedError {
        ConfinedError::Link {
            path: path.to_owned(),
            root: self.dir.clone(),
        }
    }
}

/// Creates `path` new, refusing a link at its name (`O_NOFOLLOW`) and any
/// existing entry (`O_EXCL`); `root` names the root in the error.
fn open_new(root: &Path, path: &Path) -> Result<File, ConfinedError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_symlink() => ConfinedError::Link {
                    path: path.to_owned(),
                    root: root.to_owned(),
                },
                _ => ConfinedError::Exists {
                    path: path.to_owned(),
                },
            },
            _ => io_error("create", path)(e),
        })
}

fn plain_parts(relative: &Path) -> Result<Vec<&std::ffi::OsStr>, ConfinedError> {
    relative
        .components()
        .map(|c| match c {
            Component::Normal(part) => Ok(part),
            _ => Err(ConfinedError::NotPlain {
                path: relative.to_owned(),
            }),
        })
        .collect()
}

/// A file path's directory and name; the name must be a plain component.
fn split_file(relative: &Path) -> Result<(&Path, &std::ffi::OsStr), ConfinedError> {
    let not_plain = || ConfinedError::NotPlain {
        path: relative.to_owned(),
    };
    plain_parts(relative)?;
    let name = relative.file_name().ok_or_else(not_plain)?;
    let parent = relative.parent().unwrap_or(Path::new(""));
    Ok((parent, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Dirs {
        root: PathBuf,
        outside: PathBuf,
    }

    impl Dirs {
        fn new(label: &str) -> Self {
            let base = std::env::temp_dir()
                .join(format!("stepline-confined-{label}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&base);
            let (root, outside) = (base.join("root"), base.join("outside"));
            std::fs::create_dir_all(&root).unwrap();
            std::fs::create_dir_all(&outside).unwrap();
            Self { root, outside }
        }
    }

    impl Drop for Dirs {
        fn drop(&mut self) {
            if let Some(base) = self.root.parent() {
                let _ = std::fs::remove_dir_all(base);
            }
        }
    }

    fn is_link(e: &ConfinedError) -> bool {
        matches!(e, ConfinedError::Link { .. })
    }

    #[test]
    fn files_are_created_and_replaced_below_the_root() {
        let d = Dirs::new("plain");
        let root = Root::new(&d.root).unwrap();
        let (mut f, path) = root.create_new(Path::new("a/b/c.json")).unwrap();
        f.write_all(b"1").unwrap();
        assert_eq!(path, root.path().join("a/b/c.json"));
        assert!(matches!(
            root.create_new(Path::new("a/b/c.json")),
            Err(ConfinedError::Exists { .. })
        ));
        root.write(Path::new("a/b/c.json"), b"2").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"2");
        let names: Vec<_> = std::fs::read_dir(root.path().join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["c.json"], "no temporary file left behind");
        for bad in ["../x", "/etc/passwd", "a/../../x", ""] {
            assert!(
                matches!(
                    root.create_new(Path::new(bad)),
                    Err(ConfinedError::NotPlain { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn links_anywhere_below_the_root_are_refused() {
        let d = Dirs::new("links");
        let root = Root::new(&d.root).unwrap();
        // A dangling link at the file's own name.
        symlink(d.outside.join("planted"), d.root.join("m.json")).unwrap();
        let e = root.create_new(Path::new("m.json")).unwrap_err();
        assert!(is_link(&e), "{e}");
        let e = root.write(Path::new("m.json"), b"x").unwrap_err();
        assert!(is_link(&e), "{e}");
        // A link in place of a directory on the way.
        symlink(&d.outside, d.root.join("dir")).unwrap();
        let e = root.create_new(Path::new("dir/x.json")).unwrap_err();
        assert!(is_link(&e), "{e}");
        let e = root.create_dirs(Path::new("dir/deeper")).unwrap_err();
        assert!(is_link(&e), "{e}");
        std::fs::write(d.root.join("moving"), "m").unwrap();
        let e = root
            .move_into(&d.root.join("moving"), Path::new("dir/moving"))
            .unwrap_err();
        assert!(is_link(&e), "{e}");
        assert!(d.root.join("moving").exists(), "the file stays");
        assert_eq!(std::fs::read_dir(&d.outside).unwrap().count(), 0);
    }

    #[test]
    fn moves_never_replace_what_is_there() {
        let d = Dirs::new("moves");
        let root = Root::new(&d.root).unwrap();
        std::fs::write(d.root.join("a"), "a").unwrap();
        std::fs::write(d.root.join("b"), "b").unwrap();
        root.move_into(&d.root.join("a"), Path::new("done/a"))
            .unwrap();
        std::fs::write(d.root.join("a"), "again").unwrap();
        assert!(matches!(
            root.move_into(&d.root.join("a"), Path::new("done/a")),
            Err(ConfinedError::Exists { .. })
        ));
        assert_eq!(std::fs::read(d.root.join("done/a")).unwrap(), b"a");
    }
}
