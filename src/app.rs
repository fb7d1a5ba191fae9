//! Building the server from settings: the shared state (key store, token
//! validator, users store), the middleware every response goes through, and
//! the background key refresh. Tests call this with port 0 and get the port
//! actually bound from [`Application::port`].

use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Condition, DefaultHeaders, Logger, Next, from_fn};
use actix_web::{App, HttpMessage, HttpServer, web};

use crate::auth::dpop::{DPOP, DPOP_NONCE, DpopVerifier, NextNonce};
use crate::auth::validator::TokenValidator;
use crate::auth::{AuthenticatedUser, KeyStore};
use crate::config::Settings;
use crate::db::{self, DbError};
use crate::dev::DevIssuer;
use crate::routes;
use crate::users::UserStore;

/// Log target of the access log, written at debug level only: nothing is
/// logged per request at `info`, and the middleware is left out entirely
/// unless `RUST_LOG` enables it (e.g. `RUST_LOG=info,access=debug`).
const ACCESS_LOG: &str = "access";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened or migrated.
    #[error("DATABASE_URL: {0}")]
    Database(#[from] DbError),
    /// The HTTP client for the key store could not be built.
    #[error("HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    /// The address could not be bound.
    #[error("HOST, PORT: cannot listen on {address}: {source}")]
    Bind {
        /// The `HOST:PORT` asked for.
        address: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Binds `HOST:PORT`, then builds as [`Application::build_on`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let listener = bind(&settings.host, settings.port)?;
        Self::build_on(settings, listener, None).await
    }

    /// Opens the database (running pending migrations), serves on `listener`
    /// and starts loading the signing keys in the background. With
    /// `dev_issuer`, the same server also publishes its keys.
    pub async fn build_on(
        settings: Settings,
        listener: TcpListener,
        dev_issuer: Option<web::Data<DevIssuer>>,
    ) -> Result<Self, StartupError> {
        if !settings.validation.issuer.ends_with('/') {
            // Matched exactly, and Auth0's `iss` always ends with a slash.
            log::warn!(
                "AUTH0_ISSUER {:?} has no trailing slash: tokens from an Auth0 tenant (iss \"https://.../\") will be refused",
                settings.validation.issuer
            );
        }
        for version in db::migrate(&settings.database)? {
            log::info!("applied migration {version}");
        }
        let users = web::Data::new(UserStore::open(&settings.database, settings.last_seen_interval)?);
        let keys = Arc::new(KeyStore::for_url(
            settings.jwks_url.clone(),
            settings.keys.clone(),
        )?);
        let validator = web::Data::new(TokenValidator::new(&settings.validation, Arc::clone(&keys)));
        let dpop = web::Data::new(DpopVerifier::new(&settings.dpop));
        let key_store = web::Data::from(Arc::clone(&keys));

        let address = format!("{}:{}", settings.host, settings.port);
        let bind_error = |source| StartupError::Bind {
            address: address.clone(),
            source,
        };
        let port = listener.local_addr().map_err(bind_error)?.port();

        let origin = settings.client_origin_url.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(validator.clone())
                .app_data(dpop.clone())
                .app_data(users.clone())
                .app_data(key_store.clone())
                .configure(routes::configure)
                .configure(|cfg| {
                    if let Some(dev_issuer) = &dev_issuer {
                        dev_issuer.configure(cfg);
                    }
                })
                .default_service(web::to(routes::not_found))
                .wrap(
                    Cors::default()
                        .allowed_origin(&origin)
                        .allowed_methods(["GET"])
                        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, DPOP])
                        // What a browser DPoP client reads of a refusal or a reply.
                        .expose_headers([header::WWW_AUTHENTICATE, DPOP_NONCE])
                        .max_age(86_400),
                )
                .wrap(from_fn(no_store_when_authenticated))
                .wrap(routes::json_error_bodies())
                .wrap(
                    DefaultHeaders::new()
                        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                        .add((header::X_FRAME_OPTIONS, "deny"))
                        .add((
                            header::CONTENT_SECURITY_POLICY,
                            "default-src 'none'; frame-ancestors 'none'",
                        )),
                )
                .wrap(Condition::new(
                    log::log_enabled!(target: ACCESS_LOG, log::Level::Debug),
                    // The path without its query string, and no Referer: a
                    // client may put a token in either, and the log keeps none.
                    Logger::new(r#"%a "%{method}xi %U" %s %b "%{User-Agent}i" %T"#)
                        .custom_request_replace("method", |req| req.method().to_string())
                        .log_target(ACCESS_LOG)
                        .log_level(log::Level::Debug),
                ))
        });
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        let server = server.listen(listener).map_err(bind_error)?.run();

        // Start-up never waits for the tenant: keys load and refresh beside it.
        tokio::spawn(keys.keep_fresh());
        log::info!("listening on http://{}:{port}", settings.host);
        Ok(Self { port, server })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is told to stop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Marks every response to an authenticated request private: it speaks for
/// one caller, and no cache may keep it. A DPoP request also gets the nonce
/// for its client's next proofs, when the API issues nonces.
async fn no_store_when_authenticated(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let private = {
        let extensions = response.request().extensions();
        extensions
            .contains::<AuthenticatedUser>()
            .then(|| extensions.get::<NextNonce>().map(|nonce| nonce.0.clone()))
    };
    if let Some(nonce) = private {
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(nonce) = nonce {
            headers.insert(DPOP_NONCE, nonce);
        }
    }
    Ok(response)
}

/// Binds `host:port` (port 0 picks a free one).
pub fn bind(host: &str, port: u16) -> Result<TcpListener, StartupError> {
    let address = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    TcpListener::bind(&address).map_err(|source| StartupError::Bind { address, source })
}
