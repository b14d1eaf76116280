//! The service end to end through its router, with the shipped models and real Shenzhen
//! X-rays: screening, results, pictures, and every kind of bad input the issue lists.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cxr_core::decode::dicom_writer::DicomImage;
use cxr_core::{GrayImage, decode_file};
use cxr_server::{AppState, ServerConfig, build, router};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const TB_XRAY: &str = "CHNCXR_0327_1.png";

fn shenzhen(name: &str) -> std::path::PathBuf {
    std::path::Path::new(WORKSPACE)
        .join("../shared/data/shenzhen/images")
        .join(name)
}

fn config(data_dir: &std::path::Path) -> ServerConfig {
    ServerConfig {
        data_dir: data_dir.to_path_buf(),
        model: Some(std::path::Path::new(WORKSPACE).join("models/cxr-tb-default.safetensors")),
        lungs: Some(std::path::Path::new(WORKSPACE).join("models/lungs-mobilenet-v2.safetensors")),
        ..ServerConfig::default()
    }
}

/// One server for the tests that do not need their own settings (loading models is slow).
fn shared() -> Arc<AppState> {
    static STATE: OnceLock<(Arc<AppState>, tempfile::TempDir)> = OnceLock::new();
    let (state, _) = STATE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let state = build(ServerConfig {
            keep_images: true,
            ..config(dir.path())
        })
        .unwrap();
        (state, dir)
    });
    Arc::clone(state)
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Fails with the body (the server's JSON error) unless the status is 200.
    fn assert_ok(&self) {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
    }

    fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

async fn call(state: &Arc<AppState>, request: Request<Body>) -> Answer {
    let response = router(Arc::clone(state)).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

async fn get(state: &Arc<AppState>, uri: &str) -> Answer {
    call(state, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post_raw(state: &Arc<AppState>, uri: &str, content_type: &str, bytes: Vec<u8>) -> Answer {
    let request = Request::post(uri)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(bytes))
        .unwrap();
    call(state, request).await
}

fn multipart(files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "cxr-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn png_of(image: &GrayImage) -> Vec<u8> {
    let bytes: Vec<u8> = image.pixels.iter().map(|&v| (v * 255.0) as u8).collect();
    let mut png = std::io::Cursor::new(Vec::new());
    image::write_buffer_with_format(
        &mut png,
        &bytes,
        image.width as u32,
        image.height as u32,
        image::ExtendedColorType::L8,
        image::ImageFormat::Png,
    )
    .unwrap();
    png.into_inner()
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    let picture = image::load_from_memory(bytes).unwrap();
    (picture.width(), picture.height())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_x_ray_is_screened_kept_and_shown() {
    let state = shared();
    let bytes = std::fs::read(shenzhen(TB_XRAY)).unwrap();
    let (content_type, body) = multipart(&[(TB_XRAY, &bytes)]);
    let answer = post_raw(&state, "/v1/screen", &content_type, body).await;
    answer.assert_ok();
    let result = answer.json();
    let probability = result["probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&probability));
    assert_eq!(result["name"], TB_XRAY);
    assert_eq!(result["image"]["format"], "png");
    assert_eq!(result["model"]["name"], "cxr-tb-default");
    assert_eq!(result["model"]["sha256"].as_str().unwrap().len(), 64);
    assert!(result["lungs"]["passed"].as_bool().unwrap(), "{result}");
    let decisions = result["decisions"].as_array().unwrap();
    assert!(
        decisions.len() >= 2,
        "one decision per operating point: {result}"
    );
    for decision in decisions {
        let threshold = decision["threshold"].as_f64().unwrap();
        assert_eq!(
            decision["positive"].as_bool().unwrap(),
            probability >= threshold
        );
    }

    // The same file as a raw body scores the same.
    let raw = post_raw(
        &state,
        "/v1/screen?name=again.png",
        "image/png",
        bytes.clone(),
    )
    .await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.json()["probability"], result["probability"]);
    assert_eq!(raw.json()["name"], "again.png");
    // ... and the same as `cxr predict` scores it (one preprocessing path).
    let screener = cxr_nn::predict::Screener::load(Some(
        &std::path::Path::new(WORKSPACE).join("models/cxr-tb-default.safetensors"),
    ))
    .unwrap();
    let expected = screener
        .screen_files(&[shenzhen(TB_XRAY)], &Default::default(), |_| {})
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    assert!((expected.probability - probability).abs() < 1e-6);

    let id = result["id"].as_str().unwrap();
    let stored = get(&state, &format!("/v1/results/{id}")).await;
    assert_eq!(stored.status, StatusCode::OK);
    assert_eq!(stored.json(), result);
    let image = get(&state, &format!("/v1/results/{id}/image.png")).await;
    assert_eq!(image.status, StatusCode::OK);
    assert_eq!(image.headers[header::CONTENT_TYPE], "image/png");
    let size = png_size(&image.body);
    assert!(size.0.max(size.1) <= 1024);
    for layer in ["lungs", "heatmap"] {
        let answer = get(&state, &format!("/v1/results/{id}/{layer}.png")).await;
        assert_eq!(answer.status, StatusCode::OK, "{layer}");
        assert_eq!(
            png_size(&answer.body),
            size,
            "{layer} is a layer over the X-ray"
        );
    }
    let listed = get(&state, "/v1/results?limit=1000").await.json();
    assert!(
        listed["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id)
    );
    let csv = get(&state, "/v1/results.csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    let csv = String::from_utf8(csv.body).unwrap();
    assert!(csv.starts_with("id,created,name,image_sha256"));
    assert!(csv.contains(id));
    // --keep-images: the upload is kept, named by its hash.
    let kept = state.config.data_dir.join("images").join(format!(
        "{}.png",
        result["image"]["sha256"].as_str().unwrap()
    ));
    assert_eq!(std::fs::read(kept).unwrap(), bytes);
    let metrics = String::from_utf8(get(&state, "/metrics").await.body).unwrap();
    assert!(
        metrics.contains("cxr_screenings_total{decision="),
        "{metrics}"
    );
    assert!(metrics.contains("cxr_http_requests_total{route=\"/v1/screen\",status=\"200\"}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_answers_each_file_even_when_some_are_bad() {
    let state = shared();
    let good = std::fs::read(shenzhen("CHNCXR_0001_0.png")).unwrap();
    let (content_type, body) = multipart(&[
        ("CHNCXR_0001_0.png", &good),
        ("notes.txt", b"not an image at all"),
        ("copy.png", &good),
    ]);
    let answer = post_raw(&state, "/v1/screen/batch", &content_type, body).await;
    assert_eq!(answer.status, StatusCode::OK);
    let batch = answer.json();
    assert_eq!(batch["screened"], 2);
    assert_eq!(batch["failed"], 1);
    let results = batch["results"].as_array().unwrap();
    assert_eq!(results[1]["error"]["code"], "not-an-image");
    assert_eq!(results[1]["name"], "notes.txt");
    assert_eq!(results[0]["probability"], results[2]["probability"]);
}

/// A 512 x 512 X-ray-like PNG, cut in the middle of its image data.
fn truncated_png() -> Vec<u8> {
    let image = decode_file(&shenzhen("CHNCXR_0001_0.png"), &Default::default()).unwrap();
    let small = cxr_core::report::fit_within(&image.image, 512).unwrap();
    let png = png_of(&small);
    png[..png.len() / 2].to_vec()
}

/// A DICOM file whose data set ends before the Pixel Data element.
fn dicom_without_pixels() -> Vec<u8> {
    let image = DicomImage::from_gray(&GrayImage::filled(256, 256, 0.5), 12).unwrap();
    let bytes = image.to_bytes().unwrap();
    let pixel_data_tag = [0xE0, 0x7F, 0x10, 0x00];
    let at = bytes
        .windows(4)
        .rposition(|w| w == pixel_data_tag)
        .expect("the writer writes pixel data");
    bytes[..at].to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_uploads_get_a_4xx_that_says_what_is_wrong_and_the_server_goes_on() {
    let state = shared();
    let cases: Vec<(&str, &str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "truncated PNG",
            "image/png",
            truncated_png(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "truncated-image",
        ),
        (
            "non-image bytes",
            "application/octet-stream",
            b"%PDF-1.7 not an x-ray".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-an-image",
        ),
        (
            "DICOM without pixels",
            "application/dicom",
            dicom_without_pixels(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no-pixel-data",
        ),
        (
            "wrong content type",
            "text/plain",
            b"hello".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
        ),
        (
            "50x50 image",
            "image/png",
            png_of(&GrayImage::filled(50, 50, 0.4)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "image-too-small",
        ),
        (
            "empty body",
            "image/png",
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "empty-upload",
        ),
    ];
    for (what, content_type, bytes, status, code) in cases {
        let answer = post_raw(&state, "/v1/screen", content_type, bytes).await;
        assert_eq!(
            answer.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(answer.error_code(), code, "{what}");
        let message = answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.len() > 10, "{what}: {message}");
    }
    let unknown_point = post_raw(
        &state,
        "/v1/screen?operating_point=nonsense",
        "image/png",
        std::fs::read(shenzhen("CHNCXR_0001_0.png")).unwrap(),
    )
    .await;
    assert_eq!(unknown_point.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&unknown_point.body).contains("who-min"));
    assert_eq!(get(&state, "/health").await.json()["status"], "ok");
    assert_eq!(
        get(&state, "/v1/results/../../etc/passwd").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&state, "/v1/results/not-an-id/image.png")
            .await
            .error_code(),
        "not-found"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lateral_view_is_screened_with_a_flag() {
    let state = shared();
    let image = decode_file(&shenzhen("CHNCXR_0001_0.png"), &Default::default()).unwrap();
    let small = cxr_core::report::fit_within(&image.image, 512).unwrap();
    let mut dicom = DicomImage::from_gray(&small, 12).unwrap();
    dicom.view_position = Some("LL".into());
    let answer = post_raw(
        &state,
        "/v1/screen",
        "application/dicom",
        dicom.to_bytes().unwrap(),
    )
    .await;
    answer.assert_ok();
    let result = answer.json();
    assert_eq!(result["image"]["format"], "dicom");
    assert_eq!(result["image"]["view_position"], "LL");
    let flags: Vec<&str> = result["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["flag"].as_str().unwrap())
        .collect();
    assert!(flags.contains(&"lateral-view"), "{result}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_body_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let state = build(ServerConfig {
        max_upload_bytes: 100_000,
        ..config(dir.path())
    })
    .unwrap();
    let bytes = std::fs::read(shenzhen("CHNCXR_0001_0.png")).unwrap();
    assert!(bytes.len() > 100_000);
    let answer = post_raw(&state, "/v1/screen", "image/png", bytes.clone()).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.error_code(), "upload-too-large");
    // Without a Content-Length (chunked), the limit still holds while reading.
    let stream = futures_stream(bytes);
    let request = Request::post("/v1/screen")
        .header(header::CONTENT_TYPE, "image/png")
        .body(Body::from_stream(stream))
        .unwrap();
    assert_eq!(
        call(&state, request).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

fn futures_stream(
    bytes: Vec<u8>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    struct Chunks(std::vec::IntoIter<Vec<u8>>);
    impl futures_core::Stream for Chunks {
        type Item = Result<Vec<u8>, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next().map(Ok))
        }
    }
    Chunks(
        bytes
            .chunks(16 * 1024)
            .map(<[u8]>::to_vec)
            .collect::<Vec<_>>()
            .into_iter(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_token_every_api_route_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let token = "a-long-enough-api-token";
    let state = build(ServerConfig {
        token: Some(token.into()),
        lungs: None,
        ..config(dir.path())
    })
    .unwrap();
    for uri in ["/v1/model", "/v1/results", "/v1/results.csv", "/metrics"] {
        let answer = get(&state, uri).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(answer.headers[header::WWW_AUTHENTICATE], "Bearer");
        let wrong = Request::get(uri)
            .header(header::AUTHORIZATION, "Bearer a-long-enough-api-tokeN")
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            call(&state, wrong).await.status,
            StatusCode::UNAUTHORIZED,
            "{uri}"
        );
        let right = Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(&state, right).await.status, StatusCode::OK, "{uri}");
    }
    let upload = post_raw(&state, "/v1/screen", "image/png", vec![1, 2, 3]).await;
    assert_eq!(upload.status, StatusCode::UNAUTHORIZED);
    // The page, health and the API description stay open.
    for uri in ["/", "/health", "/openapi.json"] {
        assert_eq!(get(&state, uri).await.status, StatusCode::OK, "{uri}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_answers_503_with_retry_after_and_nothing_else_fails() {
    let dir = tempfile::tempdir().unwrap();
    let state = build(ServerConfig {
        queue: 1,
        lungs: None,
        ..config(dir.path())
    })
    .unwrap();
    let bytes = std::fs::read(shenzhen("CHNCXR_0001_0.png")).unwrap();
    let requests: Vec<_> = (0..6)
        .map(|_| {
            let state = Arc::clone(&state);
            let bytes = bytes.clone();
            tokio::spawn(async move { post_raw(&state, "/v1/screen", "image/png", bytes).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for request in requests {
        let answer = request.await.unwrap();
        if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(answer.headers[header::RETRY_AFTER], "1");
            assert_eq!(answer.error_code(), "busy");
        }
        statuses.push(answer.status);
    }
    assert!(statuses.contains(&StatusCode::OK), "{statuses:?}");
    assert!(
        statuses.contains(&StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    let (content_type, body) = multipart(&[("a.png", &bytes), ("b.png", &bytes)]);
    let batch = post_raw(&state, "/v1/screen/batch", &content_type, body).await;
    assert_eq!(batch.error_code(), "batch-too-large");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_describes_every_route() {
    let state = shared();
    let doc = get(&state, "/openapi.json").await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for route in [
        "/v1/screen",
        "/v1/screen/batch",
        "/v1/model",
        "/v1/results",
        "/v1/results.csv",
        "/v1/results/{id}",
        "/v1/results/{id}/image.png",
        "/v1/results/{id}/heatmap.png",
        "/v1/results/{id}/lungs.png",
        "/health",
        "/metrics",
        "/openapi.json",
        "/",
    ] {
        assert!(paths.contains_key(route), "{route} is not described");
    }
    let page = String::from_utf8(get(&state, "/").await.body).unwrap();
    assert!(page.contains("Drop chest X-rays here"));
    let missing = get(&state, "/no/such/route").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "not-found");
}
