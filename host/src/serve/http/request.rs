//! The pure parts of serving a file over HTTP: the request path as a root-relative name, the
//! `Range` header (RFC 9110 §14.2), conditional requests (§13.1.3, §13.1.5) and the content
//! type by file extension.

use percent_encoding::percent_decode_str;
use std::time::SystemTime;

/// Why a request path is refused (400 Bad Request). The client is told nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPath {
    /// Not an origin-form path starting with `/` (`*`, or empty).
    NotAbsolute,
    /// A `\` in the path, sent or percent-encoded: a Windows separator is not a URL one.
    Backslash,
    /// A percent-encoded `/`: a separator must be sent as one.
    EncodedSlash,
    /// A `.` or `..` segment, sent or percent-encoded (RFC 3986 §3.3 dot-segments).
    DotSegment,
    /// A NUL byte, percent-encoded.
    Nul,
    /// Not valid UTF-8 once decoded.
    NotUtf8,
    /// Longer than the TFTP side accepts (`SafePath::MAX_LEN`) once decoded.
    TooLong,
}

impl std::fmt::Display for BadPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotAbsolute => "not a path starting with /",
            Self::Backslash => "a backslash in the path",
            Self::EncodedSlash => "a percent-encoded slash",
            Self::DotSegment => "a . or .. segment",
            Self::Nul => "a NUL byte",
            Self::NotUtf8 => "not UTF-8",
            Self::TooLong => "too long",
        })
    }
}

/// The file a request path names: percent-decoded segments joined by `/`, without empty
/// segments (`//` is `/`, as in a file system). `Ok(None)` for the root itself (no index, no
/// listing). Only the syntax is checked here; the kernel confines the lookup to the root
/// (`FsStore`), symlinks included.
///
/// # Errors
/// [`BadPath`]: what makes the path unacceptable.
pub fn decode_path(raw: &str) -> Result<Option<String>, BadPath> {
    let Some(rest) = raw.strip_prefix('/') else {
        return Err(BadPath::NotAbsolute);
    };
    if raw.contains('\\') {
        return Err(BadPath::Backslash);
    }
    let mut out: Vec<u8> = Vec::with_capacity(rest.len());
    for segment in rest.split('/').filter(|s| !s.is_empty()) {
        let decoded: Vec<u8> = percent_decode_str(segment).collect();
        if decoded.contains(&b'/') {
            return Err(BadPath::EncodedSlash);
        }
        if decoded.contains(&b'\\') {
            return Err(BadPath::Backslash);
        }
        if decoded.contains(&0) {
            return Err(BadPath::Nul);
        }
        if decoded == b"." || decoded == b".." {
            return Err(BadPath::DotSegment);
        }
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(&decoded);
        if out.len() > pocketpxe_core::SafePath::MAX_LEN {
            return Err(BadPath::TooLong);
        }
    }
    if out.is_empty() {
        return Ok(None);
    }
    String::from_utf8(out)
        .map(Some)
        .map_err(|_| BadPath::NotUtf8)
}

/// What to send of a file of a known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// All of it (200): no `Range`, or one this server ignores (several ranges, bad syntax,
    /// another unit), as RFC 9110 §14.2 allows.
    Full,
    /// Bytes `start..=end` (206 with `Content-Range: bytes start-end/len`).
    Part {
        /// First byte.
        start: u64,
        /// Last byte, inclusive; below the length.
        end: u64,
    },
    /// No byte of the file is in the range (416 with `Content-Range: bytes */len`).
    Unsatisfiable,
}

/// The span a `Range` header value asks for in a file of `len` bytes: one range, `bytes=a-b`,
/// `bytes=a-` or the suffix `bytes=-n` (RFC 9110 §14.1.2), the last byte clamped to the file.
pub fn parse_range(value: &[u8], len: u64) -> Span {
    let Ok(value) = std::str::from_utf8(value) else {
        return Span::Full;
    };
    let Some((unit, set)) = value.trim().split_once('=') else {
        return Span::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return Span::Full;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return Span::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // More digits than u64 holds: as good as infinite.
        Some(s.parse().unwrap_or(u64::MAX))
    };
    if first.is_empty() {
        // A suffix: the last n bytes.
        return match number(last) {
            None => Span::Full,
            Some(0) => Span::Unsatisfiable,
            Some(_) if len == 0 => Span::Unsatisfiable,
            Some(n) => Span::Part {
                start: len.saturating_sub(n),
                end: len - 1,
            },
        };
    }
    let Some(start) = number(first) else {
        return Span::Full;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(end) if end >= start => end,
            _ => return Span::Full,
        }
    };
    if start >= len {
        return Span::Unsatisfiable;
    }
    Span::Part {
        start,
        end: end.min(len - 1),
    }
}

/// Whether a file modified at `modified` is unchanged since the `If-Modified-Since` date
/// `since` (RFC 9110 §13.1.3; dates have whole seconds, so is the comparison).
pub fn not_modified_since(modified: SystemTime, since: &[u8]) -> bool {
    let Some(since) = std::str::from_utf8(since)
        .ok()
        .and_then(|s| httpdate::parse_http_date(s.trim()).ok())
    else {
        return false;
    };
    httpdate::HttpDate::from(modified) <= httpdate::HttpDate::from(since)
}

/// Whether a `Range` may apply under `If-Range: value` (RFC 9110 §13.1.5): only when it is
/// the file's `Last-Modified` date exactly (this server sends no entity tags).
pub fn if_range_matches(value: &[u8], last_modified: &str) -> bool {
    value.trim_ascii() == last_modified.as_bytes()
}

/// The `Content-Type` of a file, by its extension; `application/octet-stream` when unknown.
pub fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some((_, ext)) = name.rsplit_once('.') else {
        return OCTETS;
    };
    let ext = ext.to_ascii_lowercase();
    TYPES
        .iter()
        .find(|(e, _)| *e == ext)
        .map_or(OCTETS, |(_, t)| t)
}

const OCTETS: &str = "application/octet-stream";

/// Extensions found in boot trees and what they are; everything else is octets (kernels,
/// initrds, `.efi`, `.0`, `.kpxe` included).
const TYPES: &[(&str, &str)] = &[
    ("ipxe", "text/plain; charset=utf-8"),
    ("cfg", "text/plain; charset=utf-8"),
    ("conf", "text/plain; charset=utf-8"),
    ("txt", "text/plain; charset=utf-8"),
    ("sha256", "text/plain; charset=utf-8"),
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css"),
    ("js", "text/javascript"),
    ("json", "application/json"),
    ("xml", "application/xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("svg", "image/svg+xml"),
    ("gz", "application/gzip"),
    ("xz", "application/x-xz"),
    ("zst", "application/zstd"),
    ("tar", "application/x-tar"),
    ("iso", "application/x-iso9660-image"),
    ("img", "application/octet-stream"),
    ("sig", "application/pgp-signature"),
    ("asc", "application/pgp-signature"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn paths_decode_to_root_relative_names() {
        let ok = |raw: &str| decode_path(raw).unwrap();
        assert_eq!(ok("/pxelinux.0").as_deref(), Some("pxelinux.0"));
        assert_eq!(
            ok("/debian-installer/amd64/linux").as_deref(),
            Some("debian-installer/amd64/linux")
        );
        assert_eq!(ok("//a///b/").as_deref(), Some("a/b"));
        assert_eq!(ok("/with%20space").as_deref(), Some("with space"));
        assert_eq!(ok("/caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(ok("/..a/b..").as_deref(), Some("..a/b.."));
        assert_eq!(ok("/"), None);
        assert_eq!(ok("///"), None);
    }

    #[test]
    fn hostile_paths_are_refused() {
        for (raw, why) in [
            ("", BadPath::NotAbsolute),
            ("*", BadPath::NotAbsolute),
            ("etc/passwd", BadPath::NotAbsolute),
            ("/../etc/passwd", BadPath::DotSegment),
            ("/a/../../etc/passwd", BadPath::DotSegment),
            ("/./a", BadPath::DotSegment),
            ("/%2e%2e/etc/passwd", BadPath::DotSegment),
            ("/%2E%2E/etc/passwd", BadPath::DotSegment),
            ("/.%2e/x", BadPath::DotSegment),
            ("/%2e", BadPath::DotSegment),
            ("/a%2f..%2f..%2fetc%2fpasswd", BadPath::EncodedSlash),
            ("/%2Fetc%2Fpasswd", BadPath::EncodedSlash),
            ("/..%2fetc", BadPath::EncodedSlash),
            ("/a\\..\\b", BadPath::Backslash),
            ("/a%5c..%5cb", BadPath::Backslash),
            ("/pxelinux.0%00.png", BadPath::Nul),
            ("/%ff%fe", BadPath::NotUtf8),
        ] {
            assert_eq!(decode_path(raw), Err(why), "{raw:?}");
        }
        let long = format!("/{}", "a/".repeat(pocketpxe_core::SafePath::MAX_LEN));
        assert_eq!(decode_path(&long), Err(BadPath::TooLong));
        let just = format!("/{}", "a".repeat(pocketpxe_core::SafePath::MAX_LEN));
        assert!(decode_path(&just).unwrap().is_some());
    }

    #[test]
    fn decoded_names_are_safe_paths() {
        for raw in ["/a", "//a//b", "/x%20y/z", "/...", "/a.b/.c"] {
            let name = decode_path(raw).unwrap().unwrap();
            let safe = pocketpxe_core::SafePath::parse(name.as_bytes()).unwrap();
            assert_eq!(safe.to_string(), name, "{raw}");
        }
    }

    #[test]
    fn single_ranges_are_parsed_and_clamped() {
        let part = |start, end| Span::Part { start, end };
        let r = |v: &str, len| parse_range(v.as_bytes(), len);
        assert_eq!(r("bytes=0-0", 10), part(0, 0));
        assert_eq!(r("bytes=0-9", 10), part(0, 9));
        assert_eq!(r("bytes=2-99", 10), part(2, 9));
        assert_eq!(r("bytes=3-", 10), part(3, 9));
        assert_eq!(r("bytes=-4", 10), part(6, 9));
        assert_eq!(r("bytes=-40", 10), part(0, 9));
        assert_eq!(r(" Bytes = 1 - 2 ", 10), part(1, 2));
        assert_eq!(r("bytes=9-9", 10), part(9, 9));
        assert_eq!(r("bytes=0-99999999999999999999999", 10), part(0, 9));
    }

    #[test]
    fn unsatisfiable_and_ignored_ranges() {
        let r = |v: &str, len| parse_range(v.as_bytes(), len);
        for unsat in [
            "bytes=10-",
            "bytes=10-20",
            "bytes=-0",
            "bytes=99999999999999999999-",
        ] {
            assert_eq!(r(unsat, 10), Span::Unsatisfiable, "{unsat}");
        }
        assert_eq!(r("bytes=0-", 0), Span::Unsatisfiable);
        assert_eq!(r("bytes=-5", 0), Span::Unsatisfiable);
        for ignored in [
            "bytes=5-4",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=1-b",
            "bytes=+1-2",
            "bytes=1",
            "bytes=--1",
        ] {
            assert_eq!(r(ignored, 10), Span::Full, "{ignored}");
        }
        assert_eq!(parse_range(b"bytes=\xff-1", 10), Span::Full);
    }

    #[test]
    fn conditionals_compare_whole_seconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        let same = httpdate::fmt_http_date(t);
        assert!(not_modified_since(t, same.as_bytes()));
        let earlier = httpdate::fmt_http_date(t - Duration::from_secs(1));
        assert!(!not_modified_since(t, earlier.as_bytes()));
        let later = httpdate::fmt_http_date(t + Duration::from_secs(60));
        assert!(not_modified_since(t, later.as_bytes()));
        assert!(!not_modified_since(t, b"yesterday"));
        assert!(if_range_matches(same.as_bytes(), &same));
        assert!(!if_range_matches(earlier.as_bytes(), &same));
        assert!(!if_range_matches(b"\"etag\"", &same));
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("boot.ipxe"), "text/plain; charset=utf-8");
        assert_eq!(content_type("a/b/GRUB.CFG"), "text/plain; charset=utf-8");
        assert_eq!(content_type("debian-installer/amd64/linux"), OCTETS);
        assert_eq!(content_type("initrd.gz"), "application/gzip");
        assert_eq!(content_type("x.d/linux"), OCTETS);
        assert_eq!(content_type("bootnetx64.efi"), OCTETS);
        assert_eq!(content_type(".hidden"), OCTETS);
    }
}
