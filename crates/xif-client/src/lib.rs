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
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let network =
            |error: reqwest::Error| ClientError::Network { url: self.base.clone(), detail: error.to_string() };
        let response = request.send().await.map_err(network)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(network)?;
        if status.is_success() {
            return Ok((status, bytes));
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
        self.send(self.http.get(self.url("/users"))).await
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

    /// The log of the running version of `extension`.
    pub async fn logs(&self, extension: &str) -> Result<String, ClientError> {
        let (_, bytes) = self.fetch(self.http.get(self.url(&format!("/extensions/{extension}/logs")))).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Every extension, with its published and running versions.
    pub async fn extensions(&self) -> Result<Vec<xif_api::Extension>, ClientError> {
        self.send(self.http.get(self.url("/extensions"))).await
    }

    /// The versions of `extension`; none when it has never been uploaded.
    pub async fn versions(&self, extension: &str) -> Result<Vec<xif_api::Version>, ClientError> {
        match self.send(self.http.get(self.url(&format!("/extensions/{extension}/versions")))).await {
            Err(ClientError::Server { code: ErrorCode::UnknownExtension, .. }) => Ok(Vec::new()),
            other => other,
        }
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
}
