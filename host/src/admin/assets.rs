//! The console's files, embedded in the binary so the console works with no
//! network, no CDN and no files beside the binary: plain ES modules and
//! CSS, plus a vendored, pinned uPlot (`console/vendor/README.md`). No
//! build step: what is in `console/` is what the browser gets.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `(path under /console/, content type, bytes)`.
const FILES: &[(&str, &str, &[u8])] = &[
    ("index.html", "text/html; charset=utf-8", include_bytes!("console/index.html")),
    ("style.css", "text/css; charset=utf-8", include_bytes!("console/style.css")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("console/app.js")),
    ("api.js", "text/javascript; charset=utf-8", include_bytes!("console/api.js")),
    ("playground.js", "text/javascript; charset=utf-8", include_bytes!("console/playground.js")),
    ("windows.js", "text/javascript; charset=utf-8", include_bytes!("console/windows.js")),
    ("pipeline.js", "text/javascript; charset=utf-8", include_bytes!("console/pipeline.js")),
    ("yaml.js", "text/javascript; charset=utf-8", include_bytes!("console/yaml.js")),
    ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8", include_bytes!("console/vendor/uPlot.iife.min.js")),
    ("vendor/uPlot.min.css", "text/css; charset=utf-8", include_bytes!("console/vendor/uPlot.min.css")),
    ("vendor/uPlot.LICENSE", "text/plain; charset=utf-8", include_bytes!("console/vendor/uPlot.LICENSE")),
];

/// `GET /console/`.
pub async fn serve_index() -> Response {
    file("index.html")
}

/// `GET /console/{file}`.
pub async fn serve(Path(path): Path<String>) -> Response {
    file(&path)
}

fn file(path: &str) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == path) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                // The files change with the binary; no-cache keeps a browser
                // from mixing versions after an upgrade (it revalidates).
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such console file\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_embedded() {
        let page = String::from_utf8_lossy(FILES[0].2);
        let mut sources: Vec<String> = Vec::new();
        for (_, _, bytes) in FILES {
            let text = String::from_utf8_lossy(bytes);
            for part in text.split(['"', '\'']) {
                if let Some(name) = part.strip_prefix("./").filter(|p| p.ends_with(".js") || p.ends_with(".css")) {
                    sources.push(name.to_string());
                }
            }
        }
        assert!(page.contains("./app.js"), "the page loads app.js");
        for name in sources {
            assert!(FILES.iter().any(|(path, _, _)| *path == name), "{name} is imported but not embedded");
        }
    }
}
