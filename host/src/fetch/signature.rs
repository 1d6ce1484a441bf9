//! Checking the mirror's `InRelease` (a clearsigned Release file, RFC 9580 §7, "Cleartext
//! Signature Framework") against an OpenPGP keyring with rpgp.
//!
//! A keyring is a file of transferable public keys (RFC 9580 §10.1), binary (`.gpg`, `.pgp`) or
//! ASCII-armored (`.asc`). A signature counts when its issuer is a primary key in the keyring, or
//! a subkey whose binding signature verifies. The signed text is accepted when at least one
//! signature by a keyring key verifies and none by a keyring key fails; signatures by keys the
//! keyring lacks are skipped (Debian's InRelease carries several). Only the text inside the
//! signature is returned: nothing before the header or after the signature block is accepted.
//!
//! Key expiry and revocation are not evaluated: the keyring is taken as the list of keys to
//! trust, as Debian's `debian-archive-keyring` package keeps it (retired keys move out of it).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use pgp::composed::{
    CleartextSignedMessage, Deserializable as _, DetachedSignature, SignedPublicKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::Signature;
use pgp::types::KeyDetails;

/// Where Debian's `debian-archive-keyring` package puts the archive keyring: `.pgp` in newer
/// releases of the package, `.gpg` in older ones. The first that exists is used.
pub const DEBIAN_KEYRINGS: [&str; 2] = [
    "/usr/share/keyrings/debian-archive-keyring.pgp",
    "/usr/share/keyrings/debian-archive-keyring.gpg",
];

/// The public keys of one keyring file.
#[derive(Debug)]
pub struct Keyring {
    /// The file the keys were read from.
    pub path: PathBuf,
    keys: Vec<SignedPublicKey>,
}

/// What [`Keyring::verify_clearsigned`] vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed text, with `\n` line ends and without the dash-escaping.
    pub text: String,
    /// Fingerprints (uppercase hex) of the keys whose signatures verified.
    pub signers: Vec<String>,
}

impl Keyring {
    /// Reads `path` (binary or armored public keys).
    ///
    /// # Errors
    /// The file cannot be read, is not an OpenPGP keyring, or holds no public key.
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = fs::read(path).map_err(|e| e.to_string())?;
        Self::from_bytes(path, &bytes)
    }

    /// Debian's archive keyring from [`DEBIAN_KEYRINGS`].
    ///
    /// # Errors
    /// None of them exists (the message names the package and `--keyring`), or it is unreadable.
    pub fn debian() -> Result<Self, (PathBuf, String)> {
        let Some(path) = DEBIAN_KEYRINGS.iter().map(Path::new).find(|p| p.exists()) else {
            return Err((
                PathBuf::from(DEBIAN_KEYRINGS[1]),
                "Debian's archive keyring is not installed: install the debian-archive-keyring \
                 package (apt-get install debian-archive-keyring), or name a keyring with \
                 --keyring FILE"
                    .into(),
            ));
        };
        Self::load(path).map_err(|e| (path.to_owned(), e))
    }

    /// Parses keyring bytes; `path` is only for messages.
    ///
    /// # Errors
    /// Not an OpenPGP keyring, or no public key in it.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, String> {
        let (iter, _) = SignedPublicKey::from_reader_many(bytes)
            .map_err(|e| format!("not an OpenPGP keyring: {e}"))?;
        let mut keys = Vec::new();
        for key in iter {
            keys.push(key.map_err(|e| format!("not an OpenPGP keyring: {e}"))?);
        }
        if keys.is_empty() {
            return Err("no public key in it".into());
        }
        Ok(Self {
            path: path.to_owned(),
            keys,
        })
    }

    /// Fingerprints (uppercase hex) of the primary keys.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| fingerprint_hex(&k.primary_key.fingerprint()))
            .collect()
    }

    /// Verifies a clearsigned message and returns the signed text.
    ///
    /// # Errors
    /// Not a clearsigned message; a signature by a keyring key that does not verify or uses a
    /// weak hash; or no signature by any key of this keyring (the message lists the issuers).
    pub fn verify_clearsigned(&self, message: &str) -> Result<Verified, String> {
        let (msg, _) = CleartextSignedMessage::from_string(message)
            .map_err(|e| format!("not a clearsigned OpenPGP message: {e}"))?;
        let signed = msg.signed_text();
        let signers = self.check_signatures(msg.signatures(), signed.as_bytes())?;
        Ok(Verified {
            text: signed.replace("\r\n", "\n"),
            signers,
        })
    }

    /// Verifies a detached signature (binary or ASCII-armored, one or more signature packets,
    /// RFC 9580 §11.4) over `data`, e.g. Debian's `SHA256SUMS.sign` over `SHA256SUMS`; returns
    /// the fingerprints of the keys whose signatures verified.
    ///
    /// # Errors
    /// Not an OpenPGP signature; a signature by a keyring key that does not verify or uses a
    /// weak hash; or no signature by any key of this keyring.
    pub fn verify_detached(&self, data: &[u8], signature: &[u8]) -> Result<Vec<String>, String> {
        let (iter, _) = DetachedSignature::from_reader_many(signature)
            .map_err(|e| format!("not an OpenPGP signature: {e}"))?;
        let mut sigs = Vec::new();
        for sig in iter {
            sigs.push(
                sig.map_err(|e| format!("not an OpenPGP signature: {e}"))?
                    .signature,
            );
        }
        self.check_signatures(&sigs, data)
    }

    /// The rule for a set of signatures over `data`: at least one by a keyring key verifies,
    /// none by a keyring key fails or uses a weak hash; signatures by other keys are skipped.
    fn check_signatures<'a>(
        &self,
        sigs: impl IntoIterator<Item = &'a Signature>,
        data: &[u8],
    ) -> Result<Vec<String>, String> {
        let mut signers = Vec::new();
        let mut strangers = Vec::new();
        for sig in sigs {
            let Some((fpr, verdict)) = self.verify_one(sig, data) else {
                strangers.push(issuer_names(sig));
                continue;
            };
            let strong = matches!(
                sig.hash_alg(),
                Some(
                    HashAlgorithm::Sha256
                        | HashAlgorithm::Sha384
                        | HashAlgorithm::Sha512
                        | HashAlgorithm::Sha3_256
                        | HashAlgorithm::Sha3_512
                )
            );
            if !strong {
                return Err(format!(
                    "the signature by key {fpr} uses the weak hash {}",
                    sig.hash_alg()
                        .map_or_else(|| "(none)".to_owned(), |h| format!("{h:?}").to_uppercase())
                ));
            }
            if let Err(e) = verdict {
                tracing::debug!("signature by {fpr}: {e}");
                return Err(format!(
                    "BAD signature by key {fpr}: it does not match the signed text"
                ));
            }
            signers.push(fpr);
        }
        if signers.is_empty() {
            let by = if strangers.is_empty() {
                "it carries no signature".to_owned()
            } else {
                format!("it is signed only by {}", strangers.join(", "))
            };
            return Err(format!(
                "not signed by any key in {}: {by}",
                self.path.display()
            ));
        }
        Ok(signers)
    }

    /// Finds the keyring key (primary, or a subkey with a valid binding) that issued `sig` and
    /// verifies `sig` over `data` with it: its fingerprint and the outcome; `None` when no key
    /// of the keyring issued it.
    fn verify_one(
        &self,
        sig: &Signature,
        data: &[u8],
    ) -> Option<(String, pgp::errors::Result<()>)> {
        for key in &self.keys {
            if issued_by(sig, &key.primary_key) {
                let fpr = fingerprint_hex(&key.primary_key.fingerprint());
                return Some((fpr, sig.verify(&key.primary_key, data)));
            }
            for sub in &key.public_subkeys {
                if issued_by(sig, &sub.key) && sub.verify_bindings(&key.primary_key).is_ok() {
                    let fpr = fingerprint_hex(&sub.key.fingerprint());
                    return Some((fpr, sig.verify(&sub.key, data)));
                }
            }
        }
        None
    }
}

// ---- private helpers ----

fn issued_by(sig: &Signature, key: &impl KeyDetails) -> bool {
    let fpr = key.fingerprint();
    let id = key.legacy_key_id();
    sig.issuer_fingerprint().into_iter().any(|f| *f == fpr)
        || sig.issuer_key_id().into_iter().any(|k| *k == id)
}

fn issuer_names(sig: &Signature) -> String {
    if let Some(f) = sig.issuer_fingerprint().first() {
        return format!("key {}", fingerprint_hex(f));
    }
    match sig.issuer_key_id().first() {
        Some(id) => format!("key id {}", hex_upper(id.as_ref())),
        None => "a key it does not name".into(),
    }
}

fn fingerprint_hex(f: &pgp::types::Fingerprint) -> String {
    hex_upper(f.as_bytes())
}

fn hex_upper(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgp::composed::{EncryptionCaps, KeyType, SecretKeyParamsBuilder, SignedSecretKey};
    use pgp::ser::Serialize as _;
    use pgp::types::Password;

    const DEBIAN_INRELEASE: &str = include_str!("../../tests/data/debian-bookworm-InRelease");

    /// Debian's installed archive keyring; missing: fails under CI=true, else skips loudly.
    fn debian_keyring() -> Option<Keyring> {
        match Keyring::debian() {
            Ok(k) => Some(k),
            Err((path, e)) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("{}: {e} (CI=true: not skipping)", path.display())
            }
            Err((path, e)) => {
                eprintln!("SKIP: {}: {e}", path.display());
                None
            }
        }
    }

    fn test_key() -> SignedSecretKey {
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .can_encrypt(EncryptionCaps::None)
            .primary_user_id("pocketpxe test <test@invalid>".into());
        params
            .build()
            .unwrap()
            .generate(rand::thread_rng())
            .unwrap()
    }

    fn keyring_of(key: &SignedSecretKey) -> Keyring {
        let public = SignedPublicKey::from(key.clone());
        Keyring::from_bytes(Path::new("test.pgp"), &public.to_bytes().unwrap()).unwrap()
    }

    fn sign(key: &SignedSecretKey, text: &str) -> String {
        CleartextSignedMessage::sign(
            rand::thread_rng(),
            text,
            &key.primary_key,
            &Password::empty(),
        )
        .unwrap()
        .to_armored_string(Default::default())
        .unwrap()
    }

    #[test]
    fn real_debian_inrelease_verifies_with_rsa_and_ed25519_keys() {
        let Some(keyring) = debian_keyring() else {
            return;
        };
        let verified = keyring.verify_clearsigned(DEBIAN_INRELEASE).unwrap();
        // gpgv: RSA subkeys of the bookworm and trixie automatic signing keys, and the Ed25519
        // bookworm stable release key.
        assert_eq!(
            verified.signers,
            [
                "4CB50190207B4758A3F73A796ED0E7B82643E131",
                "B8E5F13176D2A7A75220028078DBA3BC47EF2265",
                "4D64FEC119C2029067D6E791F8D2585B8783D481",
            ]
        );
        assert!(verified.text.starts_with("Origin: Debian\nLabel: Debian\n"));
        assert!(!verified.text.contains("PGP"));
        let entry = crate::fetch::verify::release_entry(
            &verified.text,
            "bookworm",
            "main/installer-amd64/current/images/SHA256SUMS",
        )
        .unwrap();
        assert_eq!(
            entry.sha256,
            "8e0a94d8488f7c60f5fe6723e69b450ec5d7000f592ccdb169481f4bfe863b62"
        );
        assert_eq!(entry.size, 78509);

        // One changed hash digit in the signed text: every signature is bad.
        let tampered = DEBIAN_INRELEASE.replacen(
            " 8e0a94d8488f7c60f5fe6723e69b450ec5d7000f592ccdb169481f4bfe863b62",
            " 9e0a94d8488f7c60f5fe6723e69b450ec5d7000f592ccdb169481f4bfe863b62",
            1,
        );
        assert_ne!(tampered, DEBIAN_INRELEASE);
        let err = keyring.verify_clearsigned(&tampered).unwrap_err();
        assert!(err.starts_with("BAD signature by key 4CB50190"), "{err}");

        // Text outside the signed part is refused, not ignored.
        let prefixed = format!("SHA256:\n {} 1 x\n{DEBIAN_INRELEASE}", "0".repeat(64));
        assert!(keyring.verify_clearsigned(&prefixed).is_err());
        let suffixed = format!("{DEBIAN_INRELEASE}SHA256:\n {} 1 x\n", "0".repeat(64));
        assert!(keyring.verify_clearsigned(&suffixed).is_err());
    }

    #[test]
    fn debian_keyring_is_parsed() {
        let Some(keyring) = debian_keyring() else {
            return;
        };
        let fprs = keyring.fingerprints();
        // The bookworm stable release key (Ed25519) and archive key (RSA-4096).
        assert!(fprs.contains(&"4D64FEC119C2029067D6E791F8D2585B8783D481".to_owned()));
        assert!(fprs.contains(&"B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8".to_owned()));
    }

    #[test]
    fn detached_signatures_armored_or_binary() {
        use pgp::composed::ArmorOptions;
        let key = test_key();
        let keyring = keyring_of(&key);
        let data = b"0123  live.squashfs\n";
        let sig = DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &key.primary_key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            &data[..],
        )
        .unwrap();
        let armored = sig.to_armored_string(ArmorOptions::default()).unwrap();
        let fprs = keyring.fingerprints();
        assert_eq!(
            keyring.verify_detached(data, armored.as_bytes()).unwrap(),
            fprs
        );
        assert_eq!(
            keyring
                .verify_detached(data, &sig.to_bytes().unwrap())
                .unwrap(),
            fprs
        );
        let e = keyring
            .verify_detached(b"0124  live.squashfs\n", armored.as_bytes())
            .unwrap_err();
        assert!(e.starts_with("BAD signature"), "{e}");
        let e = keyring_of(&test_key())
            .verify_detached(data, armored.as_bytes())
            .unwrap_err();
        assert!(e.contains("not signed by any key"), "{e}");
        assert!(keyring.verify_detached(data, b"garbage").is_err());
    }

    #[test]
    fn only_keyring_keys_count() {
        let key = test_key();
        let other = test_key();
        let keyring = keyring_of(&key);
        let text = "Origin: test\nCodename: bookworm\n- a dashed line\n";
        let signed = sign(&key, text);
        let verified = keyring.verify_clearsigned(&signed).unwrap();
        assert_eq!(verified.text, text);
        assert_eq!(
            verified.signers,
            [fingerprint_hex(&key.primary_key.fingerprint())]
        );

        // Signed by a key the keyring lacks: refused, naming the signer.
        let stranger = sign(&other, text);
        let err = keyring.verify_clearsigned(&stranger).unwrap_err();
        assert!(
            err.starts_with("not signed by any key in test.pgp"),
            "{err}"
        );
        assert!(
            err.contains(&fingerprint_hex(&other.primary_key.fingerprint())),
            "{err}"
        );
        // The real Debian InRelease is not signed by the test key either.
        assert!(
            keyring
                .verify_clearsigned(DEBIAN_INRELEASE)
                .unwrap_err()
                .starts_with("not signed by any key")
        );

        // A changed body is a bad signature.
        let forged = signed.replace("Origin: test", "Origin: evil");
        assert_ne!(forged, signed);
        let err = keyring.verify_clearsigned(&forged).unwrap_err();
        assert!(err.starts_with("BAD signature"), "{err}");

        // Not a signed message at all.
        let err = keyring.verify_clearsigned(text).unwrap_err();
        assert!(err.starts_with("not a clearsigned"), "{err}");
    }

    #[test]
    fn armored_keyrings_load_and_junk_is_refused() {
        let key = test_key();
        let public = SignedPublicKey::from(key.clone());
        let armored = public.to_armored_bytes(Default::default()).unwrap();
        let keyring = Keyring::from_bytes(Path::new("k.asc"), &armored).unwrap();
        assert_eq!(
            keyring.fingerprints(),
            [fingerprint_hex(&key.primary_key.fingerprint())]
        );
        assert!(Keyring::from_bytes(Path::new("j"), b"not a key\n").is_err());
        assert!(Keyring::from_bytes(Path::new("e"), b"").is_err());
        let missing = Keyring::load(Path::new("/nonexistent/keyring.pgp")).unwrap_err();
        assert!(missing.contains("No such file"), "{missing}");
    }
}
