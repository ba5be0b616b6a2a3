//! Reaching a registry: [`HttpRegistry`] speaks the API of
//! [`server`](crate::server), and [`Registry`] lets callers treat a local
//! directory and an HTTP registry alike.

use std::path::PathBuf;

use semver::Version;

use crate::index::{Index, IndexEntry, PluginSpec, RegistryError};
use crate::package::{Digest, MAX_ARCHIVE_BYTES};
use crate::server::{ErrorBody, PluginList, YankRequest};
use crate::store::DirRegistry;

/// A client of a registry server.
#[derive(Debug, Clone)]
pub struct HttpRegistry {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl HttpRegistry {
    /// A client of the registry at `base_url` (e.g. `http://127.0.0.1:7070`).
    /// Only plain `http://` is built in; put TLS in front with a proxy.
    pub fn new(base_url: &str) -> Result<HttpRegistry, RegistryError> {
        let base = base_url.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") {
            return Err(RegistryError::Location {
                location: base_url.to_owned(),
                message: "only http:// registry URLs are supported".into(),
            });
        }
        Ok(HttpRegistry {
            base,
            token: None,
            client: reqwest::Client::new(),
        })
    }

    /// Use `token` as the bearer token when publishing and yanking.
    pub fn with_token(mut self, token: impl Into<String>) -> HttpRegistry {
        self.token = Some(token.into());
        self
    }

    /// The registry's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn send(&self, request: reqwest::RequestBuilder, url: &str) -> Result<reqwest::Response, RegistryError> {
        let response = request.send().await.map_err(|e| RegistryError::Http {
            url: url.to_owned(),
            message: e.to_string(),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await.unwrap_or_default();
        let message = serde_json::from_slice::<ErrorBody>(&body)
            .map(|b| b.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).chars().take(500).collect());
        Err(match status.as_u16() {
            401 => RegistryError::Unauthorized,
            404 if url.contains("/v1/index/") => RegistryError::UnknownPlugin {
                plugin: url.rsplit('/').next().unwrap_or_default().to_owned(),
            },
            code => RegistryError::Remote {
                url: url.to_owned(),
                status: code,
                message,
            },
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, RegistryError> {
        let response = self.send(self.client.get(url), url).await?;
        response.json().await.map_err(|e| RegistryError::IndexCorrupt {
            file: url.to_owned(),
            message: e.to_string(),
        })
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// The names of all plugins, sorted.
    pub async fn names(&self) -> Result<Vec<String>, RegistryError> {
        let list: PluginList = self.json(&format!("{}/v1/plugins", self.base)).await?;
        Ok(list.plugins)
    }

    /// The index of `name`.
    pub async fn index(&self, name: &str) -> Result<Index, RegistryError> {
        if !crate::manifest::valid_name(name) {
            return Err(RegistryError::InvalidName(name.to_owned()));
        }
        let url = format!("{}/v1/index/{name}", self.base);
        let index: Index = self.json(&url).await?;
        if index.name != name || index.versions.iter().any(|e| e.name != name) {
            return Err(RegistryError::IndexCorrupt {
                file: url,
                message: format!("holds entries of other plugins than `{name}`"),
            });
        }
        Ok(index)
    }

    /// All versions of `name`, oldest first (yanked included).
    pub async fn versions(&self, name: &str) -> Result<Vec<IndexEntry>, RegistryError> {
        Ok(self.index(name).await?.versions)
    }

    /// The newest non-yanked version wanted by `spec` (resolved locally over
    /// the server's index, by the same rules as [`DirRegistry::resolve`]).
    pub async fn resolve(&self, spec: &PluginSpec) -> Result<IndexEntry, RegistryError> {
        let versions = self.versions(&spec.name).await?;
        spec.select(&versions).cloned()
    }

    /// The archive of `entry`; its sha256 must be the entry's archive digest.
    pub async fn fetch(&self, entry: &IndexEntry) -> Result<Vec<u8>, RegistryError> {
        self.blob(&entry.archive).await
    }

    /// The blob named `digest`, checked against it.
    pub async fn blob(&self, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
        let url = format!("{}/v1/blobs/sha256/{}", self.base, digest.hex());
        let mut response = match self.send(self.client.get(&url), &url).await {
            Err(RegistryError::Remote { status: 404, .. }) => return Err(RegistryError::BlobMissing(*digest)),
            other => other?,
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| RegistryError::Http {
            url: url.clone(),
            message: e.to_string(),
        })? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > MAX_ARCHIVE_BYTES {
                return Err(RegistryError::Http {
                    url,
                    message: "the blob exceeds the archive size limit".into(),
                });
            }
        }
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(RegistryError::BlobCorrupt {
                expected: *digest,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Publish an archive.
    pub async fn publish(&self, archive: Vec<u8>) -> Result<IndexEntry, RegistryError> {
        let url = format!("{}/v1/publish", self.base);
        let request = self
            .authorized(self.client.post(&url))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(archive);
        let response = self.send(request, &url).await?;
        response.json().await.map_err(|e| RegistryError::Http {
            url,
            message: e.to_string(),
        })
    }

    /// Yank (or restore) a version.
    pub async fn yank(&self, name: &str, version: &Version, yanked: bool) -> Result<IndexEntry, RegistryError> {
        let url = format!("{}/v1/yank", self.base);
        let body = YankRequest {
            name: name.to_owned(),
            version: version.clone(),
            yanked,
        };
        let response = match self
            .send(self.authorized(self.client.post(&url)).json(&body), &url)
            .await
        {
            Err(RegistryError::Remote {
                status: 404, message, ..
            }) if message.contains("has no version") => {
                return Err(RegistryError::UnknownVersion {
                    plugin: name.to_owned(),
                    version: version.clone(),
                });
            }
            other => other?,
        };
        response.json().await.map_err(|e| RegistryError::Http {
            url,
            message: e.to_string(),
        })
    }
}

/// A registry of either kind.
///
/// The directory registry's methods do blocking file I/O on the calling
/// thread; they are cheap enough for a CLI. A server should call
/// [`DirRegistry`] through `spawn_blocking`, as [`server`](crate::server) does.
#[derive(Debug, Clone)]
pub enum Registry {
    /// A local directory.
    Dir(DirRegistry),
    /// A registry server.
    Http(HttpRegistry),
}

impl Registry {
    /// Open `location`: an `http://` URL, or a directory given as
    /// `dir:<path>` or a plain path (created if missing).
    pub fn open(location: &str) -> Result<Registry, RegistryError> {
        if location.starts_with("http://") {
            return Ok(Registry::Http(HttpRegistry::new(location)?));
        }
        if location.contains("://") {
            return Err(RegistryError::Location {
                location: location.to_owned(),
                message: "unknown scheme; expected `http://…`, `dir:<path>` or a path".into(),
            });
        }
        let path = location.strip_prefix("dir:").unwrap_or(location);
        if path.is_empty() {
            return Err(RegistryError::Location {
                location: location.to_owned(),
                message: "empty path".into(),
            });
        }
        Ok(Registry::Dir(DirRegistry::open(PathBuf::from(path))?))
    }

    /// The names of all plugins, sorted.
    pub async fn names(&self) -> Result<Vec<String>, RegistryError> {
        match self {
            Registry::Dir(r) => r.names(),
            Registry::Http(r) => r.names().await,
        }
    }

    /// All versions of `name`, oldest first (yanked included).
    pub async fn versions(&self, name: &str) -> Result<Vec<IndexEntry>, RegistryError> {
        match self {
            Registry::Dir(r) => r.versions(name),
            Registry::Http(r) => r.versions(name).await,
        }
    }

    /// The newest non-yanked version wanted by `spec`.
    pub async fn resolve(&self, spec: &PluginSpec) -> Result<IndexEntry, RegistryError> {
        match self {
            Registry::Dir(r) => r.resolve(spec),
            Registry::Http(r) => r.resolve(spec).await,
        }
    }

    /// The archive of `entry`, checked against its digest.
    pub async fn fetch(&self, entry: &IndexEntry) -> Result<Vec<u8>, RegistryError> {
        match self {
            Registry::Dir(r) => r.fetch(entry),
            Registry::Http(r) => r.fetch(entry).await,
        }
    }

    /// Publish an archive (it must be signed).
    pub async fn publish(&self, archive: Vec<u8>) -> Result<IndexEntry, RegistryError> {
        match self {
            Registry::Dir(r) => r.publish(&archive),
            Registry::Http(r) => r.publish(archive).await,
        }
    }

    /// Yank (or restore) a version.
    pub async fn yank(&self, name: &str, version: &Version, yanked: bool) -> Result<IndexEntry, RegistryError> {
        match self {
            Registry::Dir(r) => r.yank(name, version, yanked),
            Registry::Http(r) => r.yank(name, version, yanked).await,
        }
    }
}
