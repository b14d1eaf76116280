//! The HTTP routes: screening (one image or a batch), results (JSON, CSV, pictures), model
//! facts, health, metrics, the OpenAPI document and the web page. Every error is JSON.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::config::ServerConfig;
use crate::engine::{Engine, Screened, sha256_hex};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::pool::{HeatMapJob, Job, Pool, ScreenJob, Upload};
use crate::recent::Recent;
use crate::store::{CSV_HEADER, Row, Store};

const PAGE: &str = include_str!("../web/index.html");
const OPENAPI: &str = include_str!("../openapi.json");

/// Raw bodies are accepted with these content types (or none); anything else but multipart
/// is refused with 415.
const RAW_TYPES: [&str; 5] = [
    "image/png",
    "image/jpeg",
    "application/dicom",
    "application/octet-stream",
    "image/dicom",
];

/// Everything the handlers share.
pub struct AppState {
    pub engine: Arc<Engine>,
    pub pool: Pool,
    pub store: Store,
    pub recent: Recent,
    pub metrics: Metrics,
    pub config: ServerConfig,
}

pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/v1/screen", post(screen))
        .route("/v1/screen/batch", post(screen_batch))
        .route("/v1/model", get(model))
        .route("/v1/results", get(list_results))
        .route("/v1/results.csv", get(export_csv))
        .route("/v1/results/{id}", get(result))
        .route("/v1/results/{id}/{picture}", get(picture))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            require_token,
        ));
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/health", get(health))
        .route("/openapi.json", get(openapi))
        .merge(api)
        .fallback(|| async { ApiError::not_found("no such route; see /openapi.json") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this route does not take that method; see /openapi.json",
            )
        })
        .layer(middleware::from_fn_with_state(Arc::clone(&state), observe))
        .with_state(state)
}

/// Times out slow requests and counts every answer by route and status.
async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |path| path.as_str())
        .to_string();
    let response = match tokio::time::timeout(state.config.request_timeout, next.run(request)).await
    {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timed-out",
            format!(
                "the request took longer than {} s",
                state.config.request_timeout.as_secs()
            ),
        )
        .into_response(),
    };
    state.metrics.request(&route, response.status().as_u16());
    response
}

/// With a token configured, every API route needs `Authorization: Bearer TOKEN` (or an
/// `X-API-Token: TOKEN` header).
async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &state.config.token else {
        return next.run(request).await;
    };
    let headers = request.headers();
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-token").and_then(|v| v.to_str().ok()));
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => {
            next.run(request).await
        }
        _ => {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this server needs an API token: send `Authorization: Bearer TOKEN`",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

/// Compares without stopping at the first difference, so timing does not leak the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScreenQuery {
    /// A named operating point of the model; its default when absent.
    operating_point: Option<String>,
    /// Run the lung model (when one is loaded); default true.
    lungs: Option<bool>,
    /// The image's name for raw bodies (multipart uploads carry their file name).
    name: Option<String>,
}

type ScreenQueryResult = Result<Query<ScreenQuery>, axum::extract::rejection::QueryRejection>;

async fn screen(
    State(state): State<Arc<AppState>>,
    query: ScreenQueryResult,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let (query, uploads) = screen_request(&state, query, request).await?;
    if uploads.len() != 1 {
        return Err(ApiError::bad_request(format!(
            "send one image (got {}); use /v1/screen/batch for several",
            uploads.len()
        )));
    }
    let mut results = screen_uploads(&state, uploads, &query).await?;
    results.pop().expect("one upload, one result").map(Json)
}

async fn screen_batch(
    State(state): State<Arc<AppState>>,
    query: ScreenQueryResult,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let (query, uploads) = screen_request(&state, query, request).await?;
    if uploads.is_empty() {
        return Err(ApiError::bad_request("the request holds no image"));
    }
    let names: Vec<String> = uploads.iter().map(|u| u.name.clone()).collect();
    let results = screen_uploads(&state, uploads, &query).await?;
    let screened = results.iter().filter(|r| r.is_ok()).count();
    let items: Vec<Value> = names
        .into_iter()
        .zip(results)
        .map(|(name, result)| match result {
            Ok(value) => value,
            Err(error) => {
                let mut body = error.body();
                body["name"] = json!(name);
                body
            }
        })
        .collect();
    Ok(Json(json!({
        "screened": screened,
        "failed": items.len() - screened,
        "results": items,
    })))
}

/// The query (a malformed one is a 400 in our JSON) and the images of a screening request.
async fn screen_request(
    state: &AppState,
    query: ScreenQueryResult,
    request: Request,
) -> Result<(ScreenQuery, Vec<Upload>), ApiError> {
    let Query(query) = query.map_err(|error| ApiError::bad_request(error.body_text()))?;
    let uploads = read_uploads(state, &query, request).await?;
    Ok((query, uploads))
}

/// The images of a request: the file parts of a multipart form, or the raw body.
async fn read_uploads(
    state: &AppState,
    query: &ScreenQuery,
    request: Request,
) -> Result<Vec<Upload>, ApiError> {
    let limit = state.config.max_upload_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload-too-large",
            format!("the request body is over the limit of {limit} bytes"),
        )
    };
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let multipart = media_type == "multipart/form-data";
    if !multipart && !media_type.is_empty() && !RAW_TYPES.contains(&media_type.as_str()) {
        return Err(ApiError::unsupported_media_type(format!(
            "content type {media_type:?} is not an image upload; send multipart/form-data or \
             a raw body as one of {}",
            RAW_TYPES.join(", ")
        )));
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
        Err(error) => {
            return Err(ApiError::bad_request(format!(
                "cannot read the body: {error}"
            )));
        }
    };
    if !multipart {
        let name = safe_name(query.name.as_deref().unwrap_or("upload"));
        return Ok(vec![upload(name, bytes.to_vec())]);
    }
    let request = Request::from_parts(parts, Body::from(bytes));
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|error| ApiError::bad_request(error.body_text()))?;
    let mut uploads = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|error| ApiError::bad_request(format!("malformed multipart body: {error}")))?
    {
        let Some(file_name) = field.file_name().map(safe_name) else {
            continue; // form fields that are not files
        };
        let data = field
            .bytes()
            .await
            .map_err(|error| ApiError::bad_request(format!("malformed multipart body: {error}")))?;
        uploads.push(upload(file_name, data.to_vec()));
    }
    Ok(uploads)
}

fn upload(name: String, bytes: Vec<u8>) -> Upload {
    Upload {
        sha256: sha256_hex(&bytes),
        name,
        bytes,
    }
}

/// A client's file name made harmless for display and storage: its last path component,
/// no control characters, at most 128 characters. Never used as a path.
fn safe_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = last.chars().filter(|c| !c.is_control()).take(128).collect();
    if clean.trim().is_empty() {
        "upload".to_string()
    } else {
        clean
    }
}

/// Queues the uploads together and waits for each answer, then keeps each result.
async fn screen_uploads(
    state: &Arc<AppState>,
    uploads: Vec<Upload>,
    query: &ScreenQuery,
) -> Result<Vec<Result<Value, ApiError>>, ApiError> {
    state
        .engine
        .check_operating_point(query.operating_point.as_deref())?;
    let started = Instant::now();
    let with_lungs = query.lungs.unwrap_or(true) && state.engine.has_lung_model();
    let mut jobs = Vec::with_capacity(uploads.len());
    let mut waiting = Vec::with_capacity(uploads.len());
    let mut kept = Vec::with_capacity(uploads.len());
    for upload in uploads {
        let (reply, answer) = oneshot::channel();
        kept.push(state.config.keep_images.then(|| upload.bytes.clone()));
        waiting.push((upload.name.clone(), answer));
        jobs.push(Job::Screen(ScreenJob {
            upload,
            operating_point: query.operating_point.clone(),
            with_lungs,
            reply,
        }));
    }
    submit(state, jobs)?;
    let mut results = Vec::with_capacity(waiting.len());
    for ((name, answer), bytes) in waiting.into_iter().zip(kept) {
        let outcome = answer
            .await
            .map_err(|_| ApiError::internal("the worker stopped before answering"))
            .and_then(|result| result);
        results.push(match outcome {
            Ok(screened) => {
                let value = keep(state, name, screened, bytes).await;
                if let Ok(value) = &value {
                    let decision = value["decision"]["decision"].as_str().unwrap_or("");
                    state.metrics.screened(decision, started.elapsed());
                }
                value
            }
            Err(error) => Err(error),
        });
    }
    Ok(results)
}

/// Gives a screening its id, stores it (and the image, with `--keep-images`), holds its
/// pictures for the page, and returns the answer.
async fn keep(
    state: &Arc<AppState>,
    name: String,
    screened: Screened,
    bytes: Option<Vec<u8>>,
) -> Result<Value, ApiError> {
    let id = new_id();
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let findings = &screened.findings;
    let lungs_url = findings
        .lungs
        .as_ref()
        .map(|_| format!("/v1/results/{id}/lungs.png"));
    let mut value =
        serde_json::to_value(findings).map_err(|e| ApiError::internal(e.to_string()))?;
    value["id"] = json!(id);
    value["created"] = json!(created);
    value["name"] = json!(name);
    value["model"] = json!(state.engine.model);
    value["lung_model"] = json!(state.engine.lung_model);
    value["links"] = json!({
        "self": format!("/v1/results/{id}"),
        "image": format!("/v1/results/{id}/image.png"),
        "heatmap": format!("/v1/results/{id}/heatmap.png"),
        "lungs": lungs_url,
    });
    let row = Row {
        id: id.clone(),
        created,
        name,
        image_sha256: findings.image.sha256.clone(),
        model_sha256: state.engine.model.sha256.clone(),
        probability: findings.probability,
        operating_point: findings.decision.operating_point.clone(),
        threshold: findings.decision.threshold,
        decision: findings.decision.decision.clone(),
        flags: findings
            .flags
            .iter()
            .map(|f| f.flag.as_str())
            .collect::<Vec<_>>()
            .join(";"),
        lungs: match &findings.lungs {
            Some(lungs) if lungs.passed => "passed".into(),
            Some(_) => "failed".into(),
            None => String::new(),
        },
        kept_image: bytes
            .as_ref()
            .map(|_| format!("{}.{}", findings.image.sha256, findings.image.format)),
    };
    let stored = Arc::clone(state);
    let answer = value.clone();
    tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
        if let (Some(bytes), Some(file)) = (bytes, &row.kept_image) {
            keep_image(&stored.config, file, &bytes)?;
        }
        stored
            .store
            .insert(&row, &answer)
            .map_err(|error| ApiError::internal(error.to_string()))
    })
    .await
    .map_err(|error| ApiError::internal(error.to_string()))??;
    state.recent.insert(id, screened.pictures);
    Ok(value)
}

/// Writes an upload under the data folder's `images/`, named by its hash (never by anything
/// the client sent), once.
fn keep_image(config: &ServerConfig, file: &str, bytes: &[u8]) -> Result<(), ApiError> {
    let dir = config.data_dir.join("images");
    let path = dir.join(file);
    if path.exists() {
        return Ok(());
    }
    let fail =
        |error: std::io::Error| ApiError::internal(format!("cannot keep the image: {error}"));
    std::fs::create_dir_all(&dir).map_err(fail)?;
    let temporary = dir.join(format!(".{file}.partial"));
    std::fs::write(&temporary, bytes).map_err(fail)?;
    std::fs::rename(&temporary, &path).map_err(fail)
}

/// 128 random bits, hex: unguessable, so result links can be shared only on purpose.
fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn result(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let missing = || ApiError::not_found(format!("no screening {id:?}"));
    if !valid_id(&id) {
        return Err(missing());
    }
    let key = id.clone();
    let stored = blocking(move || state.store.result(&key)).await?;
    stored.map(Json).ok_or_else(missing)
}

async fn picture(
    State(state): State<Arc<AppState>>,
    Path((id, picture)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if !valid_id(&id) || !["image.png", "heatmap.png", "lungs.png"].contains(&picture.as_str()) {
        return Err(ApiError::not_found("no such picture"));
    }
    let entry = state.recent.get(&id).ok_or_else(|| {
        ApiError::not_found(format!(
            "the pictures of {id} are no longer held (the server keeps those of its last {} \
             screenings in memory); the result itself is at /v1/results/{id}",
            state.config.recent_pictures
        ))
    })?;
    let pictures = Arc::clone(&entry.pictures);
    let png = match picture.as_str() {
        "image.png" => {
            Bytes::from(blocking(move || cxr_core::report::gray_png(&pictures.xray.image)).await?)
        }
        "lungs.png" => {
            let Some((mask, passed)) = pictures.lungs.clone() else {
                return Err(ApiError::not_found(
                    "this screening ran without a lung model",
                ));
            };
            let (width, height) = (pictures.xray.image.width, pictures.xray.image.height);
            Bytes::from(
                blocking(move || cxr_core::lungs::outline_layer_png(&mask, width, height, passed))
                    .await?,
            )
        }
        _ => {
            let cached = entry.heat_png.lock().ok().and_then(|png| png.clone());
            match cached {
                Some(png) => png,
                None => {
                    let png = Bytes::from(heat_map_png(&state, Arc::clone(&pictures)).await?);
                    if let Ok(mut slot) = entry.heat_png.lock() {
                        *slot = Some(png.clone());
                    }
                    png
                }
            }
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        png,
    )
        .into_response())
}

/// Hands jobs to the pool, counting refusals for `/metrics`.
fn submit(state: &AppState, jobs: Vec<Job>) -> Result<(), ApiError> {
    state.pool.submit(jobs).inspect_err(|error| {
        if error.status == StatusCode::SERVICE_UNAVAILABLE {
            state.metrics.rejected();
        }
    })
}

async fn heat_map_png(
    state: &AppState,
    pictures: Arc<crate::engine::Pictures>,
) -> Result<Vec<u8>, ApiError> {
    let (reply, answer) = oneshot::channel();
    let size = (pictures.xray.image.width, pictures.xray.image.height);
    submit(state, vec![Job::HeatMap(HeatMapJob { pictures, reply })])?;
    let heat = answer
        .await
        .map_err(|_| ApiError::internal("the worker stopped before answering"))??;
    blocking(move || cxr_core::report::heat_layer_png(&heat, size.0, size.1)).await
}

/// Runs blocking work (SQLite, PNG encoding) off the async threads.
async fn blocking<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError::internal(error.to_string()))?
        .map_err(|error| ApiError::internal(error.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<usize>,
    offset: Option<usize>,
}

async fn list_results(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|error| ApiError::bad_request(error.body_text()))?;
    let limit = query.limit.unwrap_or(50).min(1000);
    let offset = query.offset.unwrap_or(0);
    let (total, rows) = blocking(move || {
        Ok::<_, crate::store::StoreError>((state.store.count()?, state.store.list(limit, offset)?))
    })
    .await?;
    Ok(Json(
        json!({"total": total, "offset": offset, "results": rows}),
    ))
}

async fn export_csv(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let csv = blocking(move || -> Result<Vec<u8>, String> {
        let rows = state
            .store
            .list(usize::MAX >> 1, 0)
            .map_err(|e| e.to_string())?;
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(CSV_HEADER).map_err(|e| e.to_string())?;
        for row in &rows {
            writer
                .write_record(row.csv_record())
                .map_err(|e| e.to_string())?;
        }
        writer.into_inner().map_err(|e| e.to_string())
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"cxr-results.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

async fn model(State(state): State<Arc<AppState>>) -> Json<Value> {
    let engine = &state.engine;
    Json(json!({
        "model": engine.model,
        "lung_model": engine.lung_model,
        "operating_points": engine.points,
        "default_operating_point": engine.default_point,
        "notice": cxr_core::report::NOTICE,
    }))
}

async fn health(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "model": state.engine.model.name,
        "lung_model": state.engine.lung_model.as_ref().map(|m| m.name.clone()),
        "jobs_in_flight": state.pool.in_flight(),
        "jobs_capacity": state.pool.capacity(),
    }))
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let text = state
        .metrics
        .render(state.pool.in_flight(), state.pool.capacity());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_file_names_never_carry_a_path_or_control_characters() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("C:\\scans\\patient 1.dcm"), "patient 1.dcm");
        assert_eq!(safe_name("a\u{0}b\nc.png"), "abc.png");
        assert_eq!(safe_name("dir/"), "upload");
        assert_eq!(safe_name(&"x".repeat(500)).len(), 128);
    }

    #[test]
    fn tokens_compare_in_full() {
        assert!(constant_time_eq(b"abcdef", b"abcdef"));
        assert!(!constant_time_eq(b"abcdef", b"abcdeg"));
        assert!(!constant_time_eq(b"abc", b"abcdef"));
    }

    #[test]
    fn ids_are_32_hex_digits() {
        let id = new_id();
        assert!(valid_id(&id), "{id}");
        assert_ne!(id, new_id());
        assert!(!valid_id("../results.sqlite"));
    }
}
