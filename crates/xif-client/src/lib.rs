//! The Platform Server's API from the client side: one [`Client`] per server and token, with
//! errors that carry the server's code and message, or say that the server could not be
//! reached.

use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use xif_api::{ErrorBody, ErrorCode, Grant, LoginRequest, LoginResponse, NewUser, PREFIX, User};

/// Why a request did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{message} ({code})")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The server's stable code.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached, or its answer could not be read.
    #[error("cannot reach the server at {url}: {detail}")]
    Network {
        /// The server.
        url: String,
        /// What failed.
        detail: String,
    },
}

/// A connection to one server, as one user.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client of the server at `base` (`https://host:port`), authenticating with `token`.
    /// `ca_certificate` (PEM) is trusted in addition to the system's roots.
    pub fn new(base: &str, token: Option<String>, ca_certificate: Option<&[u8]>) -> Result<Self, ClientError> {
        rustls::crypto::ring::default_provider().install_default().ok();
        let network = |detail: String| ClientError::Network { url: base.to_owned(), detail };
        let mut builder = reqwest::Client::builder().use_rustls_tls();
        if let Some(pem) = ca_certificate {
            let certificate = reqwest::Certificate::from_pem(pem)
                .map_err(|error| network(format!("the CA certificate is not valid PEM: {error}")))?;
            builder = builder.add_root_certificate(certificate);
        }
        let http = builder.build().map_err(|error| network(error.to_string()))?;
        Ok(Self { http, base: base.trim_end_matches('/').to_owned(), token })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{PREFIX}{path}", self.base)
    }

    /// Sends `request` with the token, and returns the body of a successful answer; an error
    /// answer becomes the server's code and message.
    async fn fetch(&self, request: reqwest::RequestBuilder) -> Result<(StatusCode, bytes::Bytes), ClientError> {
        let (status, _, bytes) = self.fetch_with_headers(request).await?;
        Ok((status, bytes))
    }

    /// The same, with the answer's headers.
    async fn fetch_with_headers(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, bytes::Bytes), ClientError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let network =
            |error: reqwest::Error| ClientError::Network { url: self.base.clone(), detail: error.to_string() };
        let response = request.send().await.map_err(network)?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(network)?;
        if status.is_success() {
            return Ok((status, headers, bytes));
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => {
                Err(ClientError::Server { status: status.as_u16(), code: body.error.code, message: body.error.message })
            }
            Err(_) => Err(ClientError::Network {
                url: self.base.clone(),
                detail: format!("HTTP {status} without an error body"),
            }),
        }
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, ClientError> {
        let (status, bytes) = self.fetch(request).await?;
        let body: &[u8] = if status == StatusCode::NO_CONTENT || bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(body).map_err(|error| ClientError::Network {
            url: self.base.clone(),
            detail: format!("unexpected answer: {error}"),
        })
    }

    /// Every item of the list at `path`, a page at a time (the largest pages the server gives),
    /// following each answer's `Link: <URL>; rel="next"` header until there is none.
    async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, ClientError> {
        let url = format!("{}?limit={}", self.url(path), xif_api::PAGE_LIMIT_MAX);
        Ok(self.pages(url, usize::MAX).await?.0)
    }

    /// The items of the list whose first page is at `url`, following each answer's `Link: <URL>;
    /// rel="next"` header until there is none or `most` items are read; and whether there are more.
    async fn pages<T: DeserializeOwned>(&self, mut url: String, most: usize) -> Result<(Vec<T>, bool), ClientError> {
        let unexpected = |detail: String| ClientError::Network { url: self.base.clone(), detail };
        let mut items = Vec::new();
        loop {
            let (_, headers, bytes) = self.fetch_with_headers(self.http.get(&url)).await?;
            let page: Vec<T> =
                serde_json::from_slice(&bytes).map_err(|error| unexpected(format!("unexpected answer: {error}")))?;
            items.extend(page);
            let next = next_link(&headers);
            if items.len() >= most {
                let more = items.len() > most || next.is_some();
                items.truncate(most);
                return Ok((items, more));
            }
            let Some(next) = next else { return Ok((items, false)) };
            // The link is relative to the page's URL; it stays on this server.
            let page_url = reqwest::Url::parse(&url).map_err(|error| unexpected(format!("`{url}`: {error}")))?;
            let resolved = page_url
                .join(&next)
                .map_err(|error| unexpected(format!("the link to the next page, `{next}`, is not a URL: {error}")))?;
            if resolved.origin() != page_url.origin() {
                return Err(unexpected(format!("the link to the next page leads to another server: `{resolved}`")));
            }
            // A server that links a page to itself would be followed forever.
            if resolved == page_url {
                return Err(unexpected(format!("the link to the next page leads to the same page: `{resolved}`")));
            }
            url = resolved.into();
        }
    }

    async fn json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(self.http.request(method, self.url(path)).json(body)).await
    }

    /// Logs in and returns the new token.
    pub async fn login(&self, user: &str, password: &str, label: Option<&str>) -> Result<LoginResponse, ClientError> {
        let request = LoginRequest {
            user: user.into(),
            password: password.into(),
            label: label.map(Into::into),
            expires_in: None,
        };
        self.json(reqwest::Method::POST, "/login", &request).await
    }

    /// The calling user.
    pub async fn me(&self) -> Result<User, ClientError> {
        self.send(self.http.get(self.url("/me"))).await
    }

    /// Every user.
    pub async fn users(&self) -> Result<Vec<User>, ClientError> {
        self.list("/users").await
    }

    /// Adds a user.
    pub async fn add_user(&self, user: &NewUser) -> Result<User, ClientError> {
        self.json(reqwest::Method::POST, "/users", user).await
    }

    /// Grants a permission or role.
    pub async fn grant(&self, user: &str, permission: &str) -> Result<User, ClientError> {
        self.json(reqwest::Method::POST, &format!("/users/{user}/grants"), &Grant { permission: permission.into() })
            .await
    }

    /// Revokes a permission or role.
    pub async fn revoke(&self, user: &str, permission: &str) -> Result<User, ClientError> {
        self.send(self.http.delete(self.url(&format!("/users/{user}/grants/{permission}")))).await
    }

    /// Calls `action` of the published version of `extension` with `inputs`.
    pub async fn invoke(
        &self,
        extension: &str,
        action: &str,
        inputs: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        self.json(reqwest::Method::POST, &format!("/extensions/{extension}/actions/{action}"), inputs).await
    }

    /// The log of the running version of `extension`: in a farm, every live node's, each headed
    /// by the node's name, or only `node`'s.
    pub async fn logs(&self, extension: &str, node: Option<&str>) -> Result<String, ClientError> {
        let mut request = self.http.get(self.url(&format!("/extensions/{extension}/logs")));
        if let Some(node) = node {
            request = request.query(&[("node", node)]);
        }
        let (_, bytes) = self.fetch(request).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Every extension, with its published and running versions.
    pub async fn extensions(&self) -> Result<Vec<xif_api::Extension>, ClientError> {
        self.list("/extensions").await
    }

    /// The versions of `extension`; none when it has never been uploaded.
    pub async fn versions(&self, extension: &str) -> Result<Vec<xif_api::Version>, ClientError> {
        match self.list(&format!("/extensions/{extension}/versions")).await {
            Err(ClientError::Server { code: ErrorCode::UnknownExtension, .. }) => Ok(Vec::new()),
            other => other,
        }
    }

    /// One extension, with its published and running versions; `None` when it has never been
    /// uploaded.
    pub async fn extension(&self, extension: &str) -> Result<Option<xif_api::Extension>, ClientError> {
        match self.send(self.http.get(self.url(&format!("/extensions/{extension}")))).await {
            Err(ClientError::Server { code: ErrorCode::UnknownExtension, .. }) => Ok(None),
            other => other.map(Some),
        }
    }

    /// The version of `extension` whose archive has SHA-256 `sha256` (lower-case hex), if one
    /// was uploaded: one request however many versions there are.
    pub async fn version_with_digest(
        &self,
        extension: &str,
        sha256: &str,
    ) -> Result<Option<xif_api::Version>, ClientError> {
        let request =
            self.http.get(self.url(&format!("/extensions/{extension}/versions"))).query(&[("sha256", sha256)]);
        match self.send::<Vec<xif_api::Version>>(request).await {
            Err(ClientError::Server { code: ErrorCode::UnknownExtension, .. }) => Ok(None),
            other => other.map(|versions| versions.into_iter().next()),
        }
    }

    /// Every publication of `extension`, oldest first.
    pub async fn publications(&self, extension: &str) -> Result<Vec<xif_api::Publication>, ClientError> {
        self.list(&format!("/extensions/{extension}/publications")).await
    }

    /// Uploads the XIF at `archive` (its SHA-256 is `sha256`) as a new version of `extension`,
    /// streaming it from the file, with `signature` (the text of its `.minisig` file) when it
    /// is signed; `sent` is told the bytes read for sending so far, and answers whether to go
    /// on. When it says no, the body ends with an error, the request is aborted, and the server
    /// keeps nothing of it. (Dropping the future alone is not enough: the connection may go on
    /// sending the body it was given.)
    pub async fn upload(
        &self,
        extension: &str,
        archive: &std::path::Path,
        sha256: &str,
        signature: Option<&str>,
        sent: impl Fn(u64) -> bool + Send + Sync + 'static,
    ) -> Result<xif_api::UploadResponse, ClientError> {
        use base64::Engine as _;
        use futures_util::StreamExt as _;
        let local = |error: std::io::Error| ClientError::Network {
            url: self.base.clone(),
            detail: format!("cannot read `{}`: {error}", archive.display()),
        };
        let file = tokio::fs::File::open(archive).await.map_err(local)?;
        let length = file.metadata().await.map_err(local)?.len();
        let mut total = 0u64;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(move |chunk| {
            if let Ok(chunk) = &chunk {
                total += chunk.len() as u64;
                if !sent(total) {
                    return Err(std::io::Error::other("the upload was cancelled"));
                }
            }
            chunk
        });
        let mut request = self
            .http
            .post(self.url(&format!("/extensions/{extension}/versions")))
            .header(xif_api::DIGEST_HEADER, sha256)
            .header(reqwest::header::CONTENT_LENGTH, length);
        if let Some(signature) = signature {
            request =
                request.header(xif_api::SIGNATURE_HEADER, base64::engine::general_purpose::STANDARD.encode(signature));
        }
        self.send(request.body(reqwest::Body::wrap_stream(stream))).await
    }

    /// Publishes a version of `extension` (or only checks that it could be, with
    /// `validate_only`).
    pub async fn publish(
        &self,
        extension: &str,
        request: &xif_api::PublishRequest,
    ) -> Result<xif_api::PublishResponse, ClientError> {
        self.json(reqwest::Method::POST, &format!("/extensions/{extension}/publications"), request).await
    }

    /// Revokes one of the caller's tokens.
    pub async fn revoke_token(&self, id: i64) -> Result<(), ClientError> {
        self.send::<Option<()>>(self.http.delete(self.url(&format!("/tokens/{id}")))).await.map(|_| ())
    }

    /// Makes a module token: it acts as `request.module`, and may use the extensions named only.
    pub async fn create_module_token(
        &self,
        request: &xif_api::NewModuleToken,
    ) -> Result<xif_api::ModuleTokenResponse, ClientError> {
        self.json(reqwest::Method::POST, "/tokens", request).await
    }

    /// The caller's tokens, revoked ones included.
    pub async fn tokens(&self) -> Result<Vec<xif_api::Token>, ClientError> {
        self.send(self.http.get(self.url("/tokens"))).await
    }

    /// The modules that use `extension`, each with its state against the published version.
    pub async fn consumers(&self, extension: &str) -> Result<Vec<xif_api::ConsumerImpact>, ClientError> {
        self.send(self.http.get(self.url(&format!("/extensions/{extension}/consumers")))).await
    }

    /// The newest `most` entries of an extension's integration log (following its pages of up to
    /// 1,000), only those since `since` (RFC 3339, or back from now: `90s`, `1h`) and only the
    /// failed ones when `failed`; and whether older entries were left out.
    ///
    /// # Errors
    ///
    /// When the server refuses (a bad `since`, an extension that does not exist) or cannot be reached.
    pub async fn calls(
        &self,
        extension: &str,
        since: Option<&str>,
        failed: bool,
        most: usize,
    ) -> Result<(Vec<xif_api::CallRecord>, bool), ClientError> {
        let limit = most.clamp(1, xif_api::PAGE_LIMIT_MAX as usize);
        let mut url = reqwest::Url::parse(&self.url(&format!("/extensions/{extension}/calls")))
            .map_err(|error| ClientError::Network { url: self.base.clone(), detail: error.to_string() })?;
        url.query_pairs_mut().append_pair("limit", &limit.to_string());
        if let Some(since) = since {
            url.query_pairs_mut().append_pair("since", since);
        }
        if failed {
            url.query_pairs_mut().append_pair("failed", "true");
        }
        self.pages(url.into(), most).await
    }

    /// Removes a user.
    pub async fn remove_user(&self, user: &str) -> Result<(), ClientError> {
        self.send::<Option<()>>(self.http.delete(self.url(&format!("/users/{user}")))).await.map(|_| ())
    }

    /// The nodes of the farm (one, the server itself, when it runs alone), with what each runs.
    pub async fn nodes(&self) -> Result<Vec<xif_api::Node>, ClientError> {
        self.send(self.http.get(self.url("/nodes"))).await
    }

    /// Every publication lock held (administrators).
    pub async fn locks(&self) -> Result<Vec<xif_api::Lock>, ClientError> {
        self.send(self.http.get(self.url("/locks"))).await
    }

    /// Breaks the publication lock of `extension` (administrators); returns whose it was.
    pub async fn break_lock(&self, extension: &str) -> Result<xif_api::Lock, ClientError> {
        self.send(self.http.delete(self.url(&format!("/extensions/{extension}/lock")))).await
    }

    /// Every database connection, with the mappings to it (administrators).
    pub async fn connections(&self) -> Result<Vec<xif_api::Connection>, ClientError> {
        self.send(self.http.get(self.url("/connections"))).await
    }

    /// Adds a database connection (administrators); its URL is shown back redacted.
    pub async fn add_connection(&self, name: &str, url: &str) -> Result<xif_api::Connection, ClientError> {
        let new = xif_api::NewConnection { name: name.to_owned(), url: url.to_owned() };
        self.json(reqwest::Method::POST, "/connections", &new).await
    }

    /// Removes a database connection (administrators); `force` even while logical databases are
    /// mapped to it (they are then missing configuration).
    pub async fn remove_connection(&self, name: &str, force: bool) -> Result<(), ClientError> {
        let url = format!("{}?force={force}", self.url(&format!("/connections/{name}")));
        self.send::<Option<()>>(self.http.delete(url)).await.map(|_| ())
    }

    /// Connects to a database connection and runs `SELECT 1` (administrators).
    pub async fn test_connection(&self, name: &str) -> Result<xif_api::ConnectionTest, ClientError> {
        self.send(self.http.post(self.url(&format!("/connections/{name}/test")))).await
    }

    /// The logical databases of an extension's published version and their mappings
    /// (administrators).
    pub async fn databases(&self, extension: &str) -> Result<Vec<xif_api::LogicalDatabase>, ClientError> {
        self.send(self.http.get(self.url(&format!("/extensions/{extension}/databases")))).await
    }

    /// Maps a logical database of an extension to a connection, after checking the database
    /// against its entities unless `force` (administrators).
    pub async fn map_database(
        &self,
        extension: &str,
        logical: &str,
        connection: &str,
        force: bool,
    ) -> Result<xif_api::LogicalDatabase, ClientError> {
        let url = format!("{}?force={force}", self.url(&format!("/extensions/{extension}/databases/{logical}")));
        let body = xif_api::MapDatabase { connection: connection.to_owned() };
        self.send(self.http.put(url).json(&body)).await
    }
}

/// The target of the `Link` header's `rel="next"` link, when there is one.
///
/// Read by hand: a `Link` header is a list of `<URI-reference>; param=value` (RFC 8288), and of
/// the crates that parse it none is among this workspace's dependencies, for the one link that
/// the server writes.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers.get_all(reqwest::header::LINK).iter().filter_map(|value| value.to_str().ok()).find_map(|value| {
        value.split(',').find_map(|link| {
            let (target, parameters) = link.trim().strip_prefix('<')?.split_once('>')?;
            let next = parameters.split(';').any(|parameter| {
                parameter.trim().split_once('=').is_some_and(|(name, value)| {
                    name.trim().eq_ignore_ascii_case("rel")
                        && value.trim().trim_matches('"').split_ascii_whitespace().any(|rel| rel == "next")
                })
            });
            next.then(|| target.to_owned())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::next_link;
    use reqwest::header::{HeaderMap, HeaderValue, LINK};

    fn link(value: &str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(LINK, HeaderValue::from_str(value).expect("a header value"));
        next_link(&headers)
    }

    #[test]
    fn the_next_page_is_found_among_links() {
        assert_eq!(
            link(r#"</api/v1/extensions?after=Shop&limit=100>; rel="next""#).as_deref(),
            Some("/api/v1/extensions?after=Shop&limit=100")
        );
        assert_eq!(link(r#"<https://a/1>; rel="prev", <https://a/3>; rel=next"#).as_deref(), Some("https://a/3"));
        assert_eq!(link(r#"<https://a/1>; rel="prev""#), None);
        assert_eq!(link("garbage"), None);
    }
}
