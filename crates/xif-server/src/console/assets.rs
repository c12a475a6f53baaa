//! The console's scripts and styles, embedded in the binary: htmx (from its npm package, see
//! `scripts/vendor-htmx`), and the console's own stylesheet and script, each made of the parts
//! in `assets/css/` and `assets/js/`. Each is compressed once, when first asked for, and
//! served under a URL that names its digest, so that browsers keep it for good and a new
//! binary's assets are new URLs.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::AppState;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    raw: &'static str,
}

/// The console's stylesheet: its parts, in order.
const CSS: &str = concat!(
    include_str!("../../assets/css/base.css"),
    include_str!("../../assets/css/extensions.css"),
    include_str!("../../assets/css/extension.css"),
    include_str!("../../assets/css/activity.css"),
    include_str!("../../assets/css/upload.css"),
    include_str!("../../assets/css/admin.css"),
);

/// The console's own script: its parts, in order.
const JS: &str = concat!(
    include_str!("../../assets/js/base.js"),
    include_str!("../../assets/js/extension.js"),
    include_str!("../../assets/js/activity.js"),
    include_str!("../../assets/js/upload.js"),
    include_str!("../../assets/js/admin.js"),
);

const ASSETS: [Asset; 3] = [
    Asset { name: "console.css", content_type: "text/css; charset=utf-8", raw: CSS },
    Asset { name: "console.js", content_type: "text/javascript; charset=utf-8", raw: JS },
    Asset {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        raw: include_str!("../../assets/htmx.min.js"),
    },
];

/// An asset ready to serve: its gzip form and the digest its URL names.
struct Prepared {
    gzip: Vec<u8>,
    digest: String,
}

static PREPARED: LazyLock<Vec<Prepared>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            // Writing to a Vec cannot fail.
            let gzip = std::io::Write::write_all(&mut encoder, asset.raw.as_bytes())
                .and_then(|()| encoder.finish())
                .unwrap_or_default();
            let digest = hex::encode(&Sha256::digest(asset.raw.as_bytes())[..6]);
            Prepared { gzip, digest }
        })
        .collect()
});

/// The URL of asset `name` (`console.css`, `console.js`, `htmx.min.js`), naming its digest.
pub(crate) fn url(name: &str) -> String {
    let digest = ASSETS
        .iter()
        .position(|asset| asset.name == name)
        .map_or_else(String::new, |index| PREPARED[index].digest.clone());
    format!("/console/assets/{name}?v={digest}")
}

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/assets/{name}", get(serve))
}

async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|asset| asset.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let asset = &ASSETS[index];
    let prepared = &PREPARED[index];
    let gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| coding.split(';').next().is_some_and(|coding| coding.trim().eq_ignore_ascii_case("gzip")));
    let mut response =
        if gzip { prepared.gzip.clone().into_response() } else { asset.raw.as_bytes().to_vec().into_response() };
    let answer = response.headers_mut();
    answer.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    answer.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    answer.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        answer.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    super::secure_headers(answer);
    response
}
