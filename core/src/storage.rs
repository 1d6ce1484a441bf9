//! File access for the TFTP server: a small trait that works with or without an OS.
//!
//! Names from the wire become a [`SafePath`] once (STYLE.md R11); a [`FileStore`] accepts
//! nothing else. DATA blocks are read by [`FileStore::read_at`] straight into the outgoing
//! packet.

use core::fmt;

/// Read-only file access, as the TFTP server needs it.
pub trait FileStore {
    /// An open file. Cheap to copy; the store owns the resource behind it.
    type Handle: Copy;
    /// What goes wrong inside the store (an OS error on a host, a flash error on a board).
    type Error: fmt::Debug;

    /// Opens `path` for reading.
    ///
    /// # Errors
    /// [`OpenError::NotFound`], [`OpenError::Denied`] (the path leaves the root, is not a regular
    /// file, or is not readable), or [`OpenError::Io`].
    fn open(&mut self, path: SafePath<'_>) -> Result<Opened<Self::Handle>, OpenError<Self::Error>>;

    /// Fills `buf` from `offset`. A return value smaller than `buf.len()` means end of file
    /// (implementations loop over short OS reads). Never called concurrently for one handle.
    ///
    /// # Errors
    /// The store's own error; the transfer is then aborted with TFTP error 0.
    fn read_at(
        &mut self,
        file: Self::Handle,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, Self::Error>;

    /// Releases `file`. Called exactly once per successful `open`.
    fn close(&mut self, _file: Self::Handle) {}
}

/// An opened file: its handle and, when known, its size (which feeds `tsize`, RFC 2349).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Opened<H> {
    /// The store's handle.
    pub handle: H,
    /// The file's size in bytes, if the store knows it.
    pub size: Option<u64>,
}

/// Why [`FileStore::open`] failed. Mapped to TFTP error codes 1, 2 and 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OpenError<E> {
    /// No such file (TFTP error 1).
    NotFound,
    /// Refused: outside the root, not a regular file, or not readable (TFTP error 2).
    Denied,
    /// The store failed (TFTP error 0).
    Io(E),
}

/// A file name from the wire, validated once: relative to the store's root.
///
/// RFC 1350 names are NUL-terminated octet strings; docs/protocol.md §3 adds what real clients send:
/// a leading `/` means "relative to the TFTP root" (GRUB), `\` separates like `/` (some PXE
/// ROMs). Empty names, `..` components, NUL bytes and non-UTF-8 names are refused.
///
/// # Invariants
/// `components()` yields at least one component, none of them empty, `.` or `..`, and none
/// containing `/`, `\` or NUL.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SafePath<'a> {
    raw: &'a str,
}

impl<'a> SafePath<'a> {
    /// The longest name accepted, in bytes.
    pub const MAX_LEN: usize = 255 * 4;

    /// Validates a raw name from the wire.
    ///
    /// # Errors
    /// [`PathError`] names what is wrong with it.
    pub fn parse(raw: &'a [u8]) -> Result<Self, PathError> {
        if raw.len() > Self::MAX_LEN {
            return Err(PathError::TooLong);
        }
        if raw.contains(&0) {
            return Err(PathError::Nul);
        }
        let raw = core::str::from_utf8(raw).map_err(|_| PathError::NotUtf8)?;
        let mut count = 0usize;
        for component in split_components(raw) {
            if component == ".." {
                return Err(PathError::ParentComponent);
            }
            count += 1;
        }
        if count == 0 {
            return Err(PathError::Empty);
        }
        Ok(Self { raw })
    }

    /// The path's components, root-relative, without empty and `.` components.
    pub fn components(&self) -> impl Iterator<Item = &'a str> + 'a {
        split_components(self.raw)
    }

    /// The name exactly as the client sent it (for logs).
    pub fn as_sent(&self) -> &'a str {
        self.raw
    }

    /// Whether this path names the same file as the `/`-separated `name`.
    pub fn matches(&self, name: &str) -> bool {
        self.components().eq(split_components(name))
    }
}

impl fmt::Debug for SafePath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SafePath(\"{self}\")")
    }
}

impl fmt::Display for SafePath<'_> {
    /// The normalised form: components joined by `/`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, component) in self.components().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(component)?;
        }
        Ok(())
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for SafePath<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}", self.raw)
    }
}

/// Why a name from the wire is not a [`SafePath`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PathError {
    /// Nothing left after removing separators and `.`.
    Empty,
    /// A `..` component.
    ParentComponent,
    /// A NUL byte inside the name.
    Nul,
    /// Not valid UTF-8.
    NotUtf8,
    /// Longer than [`SafePath::MAX_LEN`].
    TooLong,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty file name",
            Self::ParentComponent => "file name contains a '..' component",
            Self::Nul => "file name contains a NUL byte",
            Self::NotUtf8 => "file name is not valid UTF-8",
            Self::TooLong => "file name is too long",
        })
    }
}

impl core::error::Error for PathError {}

/// A read-only store over a static table of `(name, bytes)`: for tests and for firmware images
/// built in with `include_bytes!`. Names are `/`-separated and root-relative.
#[derive(Debug, Clone, Copy)]
pub struct MemStore<'a> {
    files: &'a [(&'a str, &'a [u8])],
}

impl<'a> MemStore<'a> {
    /// A store serving `files`.
    pub const fn new(files: &'a [(&'a str, &'a [u8])]) -> Self {
        Self { files }
    }
}

impl FileStore for MemStore<'_> {
    type Handle = usize;
    type Error = core::convert::Infallible;

    fn open(&mut self, path: SafePath<'_>) -> Result<Opened<usize>, OpenError<Self::Error>> {
        self.files
            .iter()
            .position(|(name, _)| path.matches(name))
            .map(|index| Opened {
                handle: index,
                size: Some(self.files[index].1.len() as u64),
            })
            .ok_or(OpenError::NotFound)
    }

    fn read_at(&mut self, file: usize, offset: u64, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let data = self.files.get(file).map_or(&[][..], |(_, data)| *data);
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }
}

fn split_components(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(['/', '\\'])
        .filter(|component| !component.is_empty() && *component != ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_slash_and_backslash_are_root_relative() {
        let p = SafePath::parse(b"/debian-installer/amd64/grub/grub.cfg").unwrap();
        assert_eq!(
            p.components().collect::<Vec<_>>(),
            ["debian-installer", "amd64", "grub", "grub.cfg"]
        );
        let p = SafePath::parse(b"\\boot\\.\\pxelinux.0").unwrap();
        assert_eq!(p.to_string(), "boot/pxelinux.0");
        assert!(p.matches("boot/pxelinux.0"));
        assert!(!p.matches("boot/pxelinux.1"));
        assert_eq!(p.as_sent(), "\\boot\\.\\pxelinux.0");
    }

    #[test]
    fn hostile_names_are_refused() {
        assert_eq!(SafePath::parse(b""), Err(PathError::Empty));
        assert_eq!(SafePath::parse(b"/"), Err(PathError::Empty));
        assert_eq!(SafePath::parse(b"./."), Err(PathError::Empty));
        assert_eq!(
            SafePath::parse(b"../etc/passwd"),
            Err(PathError::ParentComponent)
        );
        assert_eq!(
            SafePath::parse(b"a/../../x"),
            Err(PathError::ParentComponent)
        );
        assert_eq!(
            SafePath::parse(b"a\\..\\x"),
            Err(PathError::ParentComponent)
        );
        assert_eq!(SafePath::parse(b"a\0b"), Err(PathError::Nul));
        assert_eq!(SafePath::parse(b"\xff\xfe"), Err(PathError::NotUtf8));
        assert_eq!(SafePath::parse(&[b'a'; 2000]), Err(PathError::TooLong));
        // Dots inside a name are fine: only whole `..` components are refused.
        assert!(SafePath::parse(b"a..b/..c/d..").is_ok());
    }

    #[test]
    fn mem_store_reads_at_offsets() {
        let mut store = MemStore::new(&[("dir/file", b"hello world")]);
        let opened = store.open(SafePath::parse(b"/dir//file").unwrap()).unwrap();
        assert_eq!(opened.size, Some(11));
        let mut buf = [0u8; 5];
        assert_eq!(store.read_at(opened.handle, 6, &mut buf).unwrap(), 5);
        assert_eq!(&buf, b"world");
        assert_eq!(store.read_at(opened.handle, 9, &mut buf).unwrap(), 2);
        assert_eq!(store.read_at(opened.handle, 99, &mut buf).unwrap(), 0);
        assert_eq!(
            store.open(SafePath::parse(b"dir/other").unwrap()),
            Err(OpenError::NotFound)
        );
    }
}
