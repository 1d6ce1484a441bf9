//! [`OptionBytes`]: one option's full value, possibly split over several TLVs (RFC 3396), and
//! [`AddrList`], a list of addresses.

use core::net::Ipv4Addr;

use super::{OptionIter, Options};
use crate::wire::Error;

/// The full value of one option, which may be split over several TLVs (RFC 3396 §6).
///
/// Compares by content, so a split value equals the same bytes held contiguously.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OptionBytes<'a>(Inner<'a>);

#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Inner<'a> {
    Contiguous(&'a [u8]),
    Split { options: Options<'a>, code: u8 },
}

impl<'a> OptionBytes<'a> {
    /// A value held in one piece (what a server builds for emission).
    pub const fn new(data: &'a [u8]) -> Self {
        Self(Inner::Contiguous(data))
    }

    /// A value made of every TLV with `code` in `options`, concatenated (RFC 3396 §6).
    pub const fn split(options: Options<'a>, code: u8) -> Self {
        Self(Inner::Split { options, code })
    }

    /// The value's pieces, in order. A contiguous value yields one piece.
    pub fn parts(&self) -> Parts<'a> {
        match self.0 {
            Inner::Contiguous(data) => Parts {
                single: Some(data),
                iter: None,
                code: 0,
            },
            Inner::Split { options, code } => Parts {
                single: None,
                iter: Some(options.iter()),
                code,
            },
        }
    }

    /// The value as one slice, if it is held in one piece.
    pub fn as_contiguous(&self) -> Option<&'a [u8]> {
        match self.0 {
            Inner::Contiguous(data) => Some(data),
            Inner::Split { .. } => None,
        }
    }

    /// The value's total length in bytes.
    pub fn len(&self) -> usize {
        self.parts().map(<[u8]>::len).sum()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes one by one (across pieces).
    pub fn bytes(&self) -> impl Iterator<Item = u8> + use<'a> {
        self.parts().flat_map(|p| p.iter().copied())
    }

    /// Copies the whole value into `buf` and returns the filled part.
    ///
    /// # Errors
    /// [`Error::TooLong`] if `buf` is shorter than [`len`](Self::len).
    pub fn copy_into<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], Error> {
        let mut at = 0;
        for part in self.parts() {
            let end = at + part.len();
            buf.get_mut(at..end)
                .ok_or(Error::TooLong)?
                .copy_from_slice(part);
            at = end;
        }
        Ok(buf.get(..at).unwrap_or(&[]))
    }

    /// Whether the value begins with `prefix` (used for option 60 `PXEClient`, matched by prefix
    /// as PXE spec 2.1 §2.2 and UEFI HTTP boot require).
    pub fn starts_with(&self, prefix: &[u8]) -> bool {
        let mut bytes = self.bytes();
        prefix.iter().all(|p| bytes.next() == Some(*p))
    }

    /// Whether the value contains byte `b` (used for the parameter request list, option 55).
    pub fn contains(&self, b: u8) -> bool {
        self.bytes().any(|x| x == b)
    }
}

impl PartialEq for OptionBytes<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.bytes().eq(other.bytes())
    }
}

impl Eq for OptionBytes<'_> {}

/// The pieces of an [`OptionBytes`]; see [`OptionBytes::parts`].
#[derive(Debug, Clone)]
pub struct Parts<'a> {
    single: Option<&'a [u8]>,
    iter: Option<OptionIter<'a>>,
    code: u8,
}

impl<'a> Iterator for Parts<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if let Some(single) = self.single.take() {
            return Some(single);
        }
        let iter = self.iter.as_mut()?;
        // Errors cannot occur on a value from a parsed packet; stop quietly if they do.
        iter.map_while(Result::ok)
            .find(|o| o.code == self.code)
            .map(|o| o.data)
    }
}

/// A list of IPv4 addresses (options 3, 6): either wire bytes or caller-supplied addresses.
///
/// Compares by content.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AddrList<'a> {
    /// As parsed from the wire (length a multiple of 4, checked by the parser).
    Wire(OptionBytes<'a>),
    /// Supplied by the caller for emission.
    Addrs(&'a [Ipv4Addr]),
}

impl<'a> AddrList<'a> {
    /// Caller-supplied lists ([`AddrList::Addrs`]) are emitted up to this many addresses.
    pub const MAX_ADDRS: usize = 63;

    /// The addresses in order.
    pub fn iter(&self) -> impl Iterator<Item = Ipv4Addr> + use<'a> {
        let (wire, addrs) = match *self {
            Self::Wire(b) => (Some(b), &[][..]),
            Self::Addrs(a) => (None, a),
        };
        let mut bytes = wire.into_iter().flat_map(|b| b.bytes());
        let from_wire = core::iter::from_fn(move || {
            Some(Ipv4Addr::new(
                bytes.next()?,
                bytes.next()?,
                bytes.next()?,
                bytes.next()?,
            ))
        });
        from_wire.chain(addrs.iter().copied())
    }

    /// The encoded length in bytes: the wire bytes, or 4 per address up to
    /// [`MAX_ADDRS`](Self::MAX_ADDRS).
    pub fn byte_len(&self) -> usize {
        match self {
            Self::Wire(b) => b.len(),
            Self::Addrs(a) => a.len().min(Self::MAX_ADDRS) * 4,
        }
    }
}

impl PartialEq for AddrList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for AddrList<'_> {}
