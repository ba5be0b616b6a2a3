//! Publisher keys and package signatures (ed25519).
//!
//! A publisher signs the message
//!
//! ```text
//! yiwang-signature-v1
//! <name>
//! <version>
//! sha256:<content digest>
//! ```
//!
//! so a signature binds the plugin's name, version and content together: it
//! cannot be moved to another plugin or version, and any change to the
//! manifest or component changes the digest.
//!
//! Key files are small TOML documents. The secret key file (mode 0600):
//!
//! ```toml
//! publisher = "acme-vendor"
//! algorithm = "ed25519"
//! secret = "<base64 of the 32-byte seed>"
//! ```
//!
//! The public key file, which operators put into their trust policy:
//!
//! ```toml
//! publisher = "acme-vendor"
//! key = "ed25519:<base64 of the 32-byte public key>"
//! key-id = "<16 hex digits>"
//! ```

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use semver::Version;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::fsutil::{self, PathError, at};
use crate::package::{Digest, Package, PackageError};

/// The algorithm prefix of public keys in text form.
const KEY_PREFIX: &str = "ed25519:";

/// A publisher's public key, written `ed25519:<base64>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// The key's raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The key's short id: the first 16 hex digits of the sha256 of its bytes.
    pub fn key_id(&self) -> String {
        hex::encode(&Sha256::digest(self.0.as_bytes())[..8])
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{KEY_PREFIX}{}", BASE64.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let b64 = text
            .trim()
            .strip_prefix(KEY_PREFIX)
            .ok_or_else(|| format!("`{text}` is not a public key; expected `{KEY_PREFIX}<base64>`"))?;
        let bytes = BASE64
            .decode(b64)
            .map_err(|e| format!("public key `{text}`: bad base64: {e}"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("public key `{text}`: {} bytes, expected 32", b.len()))?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| format!("public key `{text}` is not a valid ed25519 point"))
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A key file that could not be created, read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] PathError),
    /// The key file is malformed.
    #[error("key file {}: {message}", .file.display())]
    Malformed {
        /// The key file.
        file: std::path::PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A secret key file is never overwritten.
    #[error("key file {} already exists; refusing to overwrite a key", .0.display())]
    Exists(std::path::PathBuf),
    /// The publisher name is not usable.
    #[error("publisher name `{0}` must be non-empty and hold no control characters")]
    BadPublisher(String),
    /// The operating system's random source failed.
    #[error("cannot get random bytes for a new key: {0}")]
    Random(String),
}

/// A publisher's signing key with the publisher's name.
pub struct KeyPair {
    /// The publisher the key signs for.
    pub publisher: String,
    signing: SigningKey,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("publisher", &self.publisher)
            .field("public", &self.public())
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretFile {
    publisher: String,
    algorithm: String,
    secret: String,
}

fn check_publisher(publisher: &str) -> Result<(), KeyError> {
    if publisher.trim().is_empty() || publisher.chars().any(char::is_control) {
        return Err(KeyError::BadPublisher(publisher.to_owned()));
    }
    Ok(())
}

impl KeyPair {
    /// A new random key for `publisher`, from the operating system's random source.
    pub fn generate(publisher: &str) -> Result<KeyPair, KeyError> {
        check_publisher(publisher)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(KeyPair {
            publisher: publisher.to_owned(),
            signing: SigningKey::from_bytes(&seed),
        })
    }

    /// A key from a known 32-byte seed (for tests and key import).
    pub fn from_seed(publisher: &str, seed: [u8; 32]) -> Result<KeyPair, KeyError> {
        check_publisher(publisher)?;
        Ok(KeyPair {
            publisher: publisher.to_owned(),
            signing: SigningKey::from_bytes(&seed),
        })
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    /// The public key's id (see [`PublicKey::key_id`]).
    pub fn key_id(&self) -> String {
        self.public().key_id()
    }

    /// The publisher's name with the public key, as operators receive it.
    pub fn publisher_key(&self) -> PublisherKey {
        PublisherKey {
            publisher: self.publisher.clone(),
            key: self.public(),
        }
    }

    /// Save the secret key to a new file at `path` (mode 0600 on unix).
    /// An existing file is never overwritten.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        if path.exists() {
            return Err(KeyError::Exists(path.to_owned()));
        }
        let file = SecretFile {
            publisher: self.publisher.clone(),
            algorithm: "ed25519".into(),
            secret: BASE64.encode(self.signing.to_bytes()),
        };
        let body = toml::to_string(&file).map_err(|e| KeyError::Malformed {
            file: path.to_owned(),
            message: e.to_string(),
        })?;
        let text = format!("# Yiwang publisher signing key. Keep this file secret.\n{body}");
        fsutil::write_atomic(path, text.as_bytes(), 0o600)?;
        Ok(())
    }

    /// Load a secret key file written by [`KeyPair::save`].
    pub fn load(path: &Path) -> Result<KeyPair, KeyError> {
        let text = std::fs::read_to_string(path).map_err(at(path))?;
        let bad = |message: String| KeyError::Malformed {
            file: path.to_owned(),
            message,
        };
        let file: SecretFile = toml::from_str(&text).map_err(|e| bad(e.message().to_owned()))?;
        if file.algorithm != "ed25519" {
            return Err(bad(format!(
                "unknown algorithm `{}`; expected `ed25519`",
                file.algorithm
            )));
        }
        let bytes = BASE64
            .decode(file.secret.trim())
            .map_err(|e| bad(format!("field `secret`: bad base64: {e}")))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| bad(format!("field `secret`: {} bytes, expected 32", b.len())))?;
        check_publisher(&file.publisher).map_err(|e| bad(e.to_string()))?;
        Ok(KeyPair {
            publisher: file.publisher,
            signing: SigningKey::from_bytes(&seed),
        })
    }
}

/// A publisher's name and public key: the public key file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PublisherKey {
    /// The publisher.
    pub publisher: String,
    /// The public key.
    pub key: PublicKey,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct PublicFile {
    publisher: String,
    key: PublicKey,
    #[serde(default)]
    key_id: Option<String>,
}

impl PublisherKey {
    /// Save as a public key file (overwriting; it holds nothing secret).
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        fsutil::write_atomic(path, self.to_toml().as_bytes(), 0o644)?;
        Ok(())
    }

    /// The public key file's text.
    pub fn to_toml(&self) -> String {
        format!(
            "# Yiwang publisher public key: give this to operators for their trust.toml.\npublisher = {}\nkey = \"{}\"\nkey-id = \"{}\"\n",
            toml::Value::String(self.publisher.clone()),
            self.key,
            self.key.key_id()
        )
    }

    /// Load a public key file; a `key-id` in it must match the key.
    pub fn load(path: &Path) -> Result<PublisherKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(at(path))?;
        let bad = |message: String| KeyError::Malformed {
            file: path.to_owned(),
            message,
        };
        let file: PublicFile = toml::from_str(&text).map_err(|e| bad(e.message().to_owned()))?;
        if let Some(id) = &file.key_id
            && *id != file.key.key_id()
        {
            return Err(bad(format!(
                "key-id `{id}` does not match the key, whose id is `{}`",
                file.key.key_id()
            )));
        }
        Ok(PublisherKey {
            publisher: file.publisher,
            key: file.key,
        })
    }
}

/// A publisher's signature over a package: the `signature.toml` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Who signed.
    pub publisher: String,
    /// The signing key's id.
    pub key_id: String,
    /// The signing key.
    pub public_key: PublicKey,
    /// The plugin's name.
    pub name: String,
    /// The plugin's version.
    pub version: Version,
    /// The package's content digest.
    pub digest: Digest,
    /// The ed25519 signature over [`signed_message`].
    pub signature: ed25519_dalek::Signature,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawSignature {
    publisher: String,
    key_id: String,
    public_key: String,
    name: String,
    version: String,
    digest: String,
    signature: String,
}

/// The exact message a publisher signs for a package.
pub fn signed_message(name: &str, version: &Version, digest: &Digest) -> String {
    format!("yiwang-signature-v1\n{name}\n{version}\n{digest}")
}

/// Why a signature does not hold for a package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The package's content is not what was signed: it was changed after signing.
    #[error(
        "plugin `{plugin}` {version}: content digest {actual} differs from the signed digest {signed}; the package was changed after it was signed"
    )]
    DigestMismatch {
        /// The plugin.
        plugin: String,
        /// Its version.
        version: Version,
        /// The digest in the signature.
        signed: Digest,
        /// The digest of the package's files.
        actual: Digest,
    },
    /// The signature is for another plugin or version.
    #[error("plugin `{plugin}` {version}: the signature is for `{signed_name}` {signed_version}")]
    NameMismatch {
        /// The package's plugin name.
        plugin: String,
        /// The package's version.
        version: Version,
        /// The name in the signature.
        signed_name: String,
        /// The version in the signature.
        signed_version: Version,
    },
    /// The key id in the signature is not the id of its key.
    #[error("plugin `{plugin}`: signature key-id `{key_id}` does not match its public key, whose id is `{actual}`")]
    KeyIdMismatch {
        /// The plugin.
        plugin: String,
        /// The key id in the signature.
        key_id: String,
        /// The id of the key in the signature.
        actual: String,
    },
    /// The signature does not verify under the key.
    #[error("plugin `{plugin}` {version}: the signature by `{publisher}` (key {key_id}) is not valid")]
    BadSignature {
        /// The plugin.
        plugin: String,
        /// Its version.
        version: Version,
        /// The publisher named in the signature.
        publisher: String,
        /// The key id.
        key_id: String,
    },
}

impl Signature {
    /// The `signature.toml` text.
    pub fn to_toml(&self) -> String {
        let raw = RawSignature {
            publisher: self.publisher.clone(),
            key_id: self.key_id.clone(),
            public_key: self.public_key.to_string(),
            name: self.name.clone(),
            version: self.version.to_string(),
            digest: self.digest.to_string(),
            signature: BASE64.encode(self.signature.to_bytes()),
        };
        // Serializing a struct of strings cannot fail.
        toml::to_string(&raw).unwrap_or_default()
    }

    /// Parse `signature.toml`; the error names the field.
    pub fn from_toml(text: &str) -> Result<Signature, String> {
        let raw: RawSignature = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let public_key = raw.public_key.parse().map_err(|e| format!("field `public-key`: {e}"))?;
        let version = Version::parse(&raw.version).map_err(|e| format!("field `version`: `{}`: {e}", raw.version))?;
        let digest = raw.digest.parse().map_err(|e| format!("field `digest`: {e}"))?;
        let bytes = BASE64
            .decode(raw.signature.trim())
            .map_err(|e| format!("field `signature`: bad base64: {e}"))?;
        let bytes: [u8; 64] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("field `signature`: {} bytes, expected 64", b.len()))?;
        Ok(Signature {
            publisher: raw.publisher,
            key_id: raw.key_id,
            public_key,
            name: raw.name,
            version,
            digest,
            signature: ed25519_dalek::Signature::from_bytes(&bytes),
        })
    }

    /// Check this signature against a package: the package's name and version
    /// are the signed ones, its recomputed content digest is the signed one,
    /// the key id belongs to the key, and the signature verifies.
    ///
    /// This is integrity only; whether the signer is trusted is
    /// [`TrustPolicy::check`](crate::trust::TrustPolicy::check)'s question.
    pub fn verify(&self, package: &Package) -> Result<(), SignatureError> {
        self.verify_parts(&package.manifest.name, &package.manifest.version, &package.digest)
    }

    /// [`Signature::verify`] for a package known by name, version and digest.
    pub fn verify_parts(&self, name: &str, version: &Version, digest: &Digest) -> Result<(), SignatureError> {
        if self.name != name || self.version != *version {
            return Err(SignatureError::NameMismatch {
                plugin: name.to_owned(),
                version: version.clone(),
                signed_name: self.name.clone(),
                signed_version: self.version.clone(),
            });
        }
        if self.digest != *digest {
            return Err(SignatureError::DigestMismatch {
                plugin: name.to_owned(),
                version: version.clone(),
                signed: self.digest,
                actual: *digest,
            });
        }
        let actual = self.public_key.key_id();
        if self.key_id != actual {
            return Err(SignatureError::KeyIdMismatch {
                plugin: name.to_owned(),
                key_id: self.key_id.clone(),
                actual,
            });
        }
        let message = signed_message(&self.name, &self.version, &self.digest);
        self.public_key
            .0
            .verify_strict(message.as_bytes(), &self.signature)
            .map_err(|_| SignatureError::BadSignature {
                plugin: name.to_owned(),
                version: version.clone(),
                publisher: self.publisher.clone(),
                key_id: self.key_id.clone(),
            })
    }
}

/// Refuse to sign a package whose manifest names another publisher than the key's.
pub(crate) fn check_signer(package: &Package, key: &KeyPair) -> Result<(), PackageError> {
    if package.manifest.publisher != key.publisher {
        return Err(PackageError::PublisherMismatch {
            plugin: package.manifest.name.clone(),
            manifest: package.manifest.publisher.clone(),
            key: key.publisher.clone(),
        });
    }
    Ok(())
}

/// Sign `package` with `key` (the package itself is not changed; set
/// `package.signature` to attach the result).
pub fn sign(package: &Package, key: &KeyPair) -> Signature {
    sign_parts(&package.manifest.name, &package.manifest.version, &package.digest, key)
}

/// Sign a package known by name, version and content digest (e.g. from a
/// [`PackInfo`](crate::package::PackInfo)).
pub fn sign_parts(name: &str, version: &Version, digest: &Digest, key: &KeyPair) -> Signature {
    let message = signed_message(name, version, digest);
    Signature {
        publisher: key.publisher.clone(),
        key_id: key.key_id(),
        public_key: key.public(),
        name: name.to_owned(),
        version: version.clone(),
        digest: *digest,
        signature: key.signing.sign(message.as_bytes()),
    }
}

/// Sign the `.ywpkg` file at `path` in place: the archive is rewritten
/// (atomically) with a `signature.toml` by `key`, replacing any earlier one.
///
/// The manifest's `publisher` must be the key's publisher, so a vendor cannot
/// sign a package that claims to come from someone else by mistake.
pub fn sign_archive(path: &Path, key: &KeyPair) -> Result<Signature, PackageError> {
    let mut package = Package::read_archive(path)?;
    check_signer(&package, key)?;
    let signature = sign(&package, key);
    package.signature = Some(signature.clone());
    let bytes = package.to_archive()?;
    crate::package::write_archive_file(path, &bytes)?;
    Ok(signature)
}
