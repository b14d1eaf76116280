//! How the service runs: address, token, limits, pool size, where results go. Defaults are
//! safe: loopback only, uploads up to 64 MiB, a bounded queue, images not kept.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Shortest accepted token: long enough that guessing is hopeless.
pub const MIN_TOKEN_LENGTH: usize = 16;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    /// Required on every API route when set; required to bind beyond loopback.
    pub token: Option<String>,
    /// Holds `results.sqlite` and, with `keep_images`, `images/`.
    pub data_dir: PathBuf,
    pub keep_images: bool,
    /// TB model file; `None` for the shipped one.
    pub model: Option<PathBuf>,
    /// Lung model file; `None` for no lung check, outline or heat-map masking.
    pub lungs: Option<PathBuf>,
    /// Inference threads. Each forward pass already uses every core, so one is best on small
    /// machines; more help only with many cores.
    pub workers: usize,
    /// Jobs admitted at once (running and waiting); more get 503 with Retry-After.
    pub queue: usize,
    /// Largest request body.
    pub max_upload_bytes: usize,
    /// Whole-request limit, queueing included.
    pub request_timeout: Duration,
    /// Smallest accepted image side in pixels (a chest X-ray below this cannot be screened).
    pub min_side: usize,
    /// Largest accepted width * height (decompression-bomb guard).
    pub max_pixels: usize,
    /// Screenings whose pictures are held in memory for the page.
    pub recent_pictures: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            data_dir: PathBuf::from("cxr-data"),
            keep_images: false,
            model: None,
            lungs: None,
            workers: 1,
            queue: 32,
            max_upload_bytes: 64 * 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            min_side: 128,
            max_pixels: 100_000_000,
            recent_pictures: 64,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error(
        "binding to {0} exposes the service beyond this machine: set an API token (--token or $CXR_TOKEN)"
    )]
    TokenRequired(SocketAddr),
    #[error("the API token is {0} characters; use at least {MIN_TOKEN_LENGTH}")]
    TokenTooShort(usize),
    #[error("{0} must be at least 1")]
    Zero(&'static str),
}

impl ServerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(token) = &self.token
            && token.chars().count() < MIN_TOKEN_LENGTH
        {
            return Err(ConfigError::TokenTooShort(token.chars().count()));
        }
        if !self.bind.ip().is_loopback() && self.token.is_none() {
            return Err(ConfigError::TokenRequired(self.bind));
        }
        for (value, name) in [
            (self.workers, "workers"),
            (self.queue, "queue"),
            (self.max_upload_bytes, "the upload limit"),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_beyond_loopback_needs_a_long_enough_token() {
        let open = ServerConfig {
            bind: "0.0.0.0:8080".parse().unwrap(),
            ..ServerConfig::default()
        };
        assert_eq!(open.validate(), Err(ConfigError::TokenRequired(open.bind)));
        let short = ServerConfig {
            token: Some("secret".into()),
            ..open.clone()
        };
        assert_eq!(short.validate(), Err(ConfigError::TokenTooShort(6)));
        let guarded = ServerConfig {
            token: Some("a-long-enough-api-token".into()),
            ..open
        };
        assert_eq!(guarded.validate(), Ok(()));
        assert_eq!(ServerConfig::default().validate(), Ok(()));
    }
}
