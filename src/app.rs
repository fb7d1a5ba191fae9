//! Building the server from settings: the shared state (key store, token
//! validator, users store), the middleware every response goes through, and
//! the background key refresh. Tests call this with port 0 and get the port
//! actually bound from [`Application::port`].

use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Condition, DefaultHeaders, Next, from_fn};
use actix_web::{App, HttpMessage, HttpResponse, HttpServer, web};

use crate::auth::DpopMode;
use crate::auth::dpop::{DPOP, DPOP_NONCE, DpopVerifier, NextNonce};
use crate::auth::validator::TokenValidator;
use crate::auth::{AuthenticatedUser, IssuerKeys, PublicUrl};
use crate::config::Settings;
use crate::connection;
use crate::db::{self, DbError};
use crate::dev::DevMode;
use crate::metrics::METRICS;
use crate::proof_ledger::ProofLedger;
use crate::routes::{self, Docs};
use crate::shutdown::Drain;
use crate::telemetry;
use crate::users::{self, UserStore, WritersClosed};

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
    /// The metrics address could not be bound.
    #[error("METRICS_ADDR: cannot listen on {address}: {source}")]
    BindMetrics {
        /// The address asked for.
        address: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// A bound, ready-to-run server, and its metrics listener when asked for.
pub struct Application {
    port: u16,
    server: Server,
    metrics: Option<(u16, Server)>,
    drain: Arc<Drain>,
    writers: WritersClosed,
}

impl Application {
    /// Binds `HOST:PORT`, then builds as [`Application::build_on`] with the
    /// API's routes alone.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let listener = bind(&settings.host, settings.port)?;
        Self::build_on(settings, listener, None, |_| {}).await
    }

    /// Opens the database (running pending migrations), serves on `listener`
    /// and starts loading the signing keys in the background. With `dev`,
    /// the same server also publishes the development issuer's keys, and
    /// its docs page offers the development tokens. `more_routes` registers
    /// routes beside the API's (a test's), behind the same middleware.
    pub async fn build_on(
        settings: Settings,
        listener: TcpListener,
        dev: Option<DevMode>,
        more_routes: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    ) -> Result<Self, StartupError> {
        for issuer in settings
            .validation
            .issuers
            .iter()
            .filter(|issuer| !issuer.ends_with('/'))
        {
            // Matched exactly, and Auth0's `iss` always ends with a slash.
            log::warn!(
                "AUTH0_ISSUER {issuer:?} has no trailing slash: tokens from an Auth0 tenant (iss \"https://.../\") will be refused; for one, write it as {:?}",
                format!("{issuer}/")
            );
        }
        if let Some(base) = &settings.public_base_url {
            let base = base.as_str().trim_end_matches('/');
            let audiences = &settings.validation.audiences;
            if !audiences.iter().any(|aud| aud.trim_end_matches('/') == base) {
                // MCP clients ask for a token to the URL they call (RFC 8707's
                // resource), and compare it with the metadata's `resource`.
                log::warn!(
                    "AUTH0_AUDIENCE {audiences:?} does not name PUBLIC_BASE_URL {base:?}: MCP clients will ask for tokens to {base:?}; for them, make it the API's identifier (AUTH0_AUDIENCE)"
                );
            }
        }
        for version in db::migrate(&settings.database)? {
            log::info!("applied migration {version}");
        }
        if let Some(first) = settings.validation.issuers.first() {
            let adopted = users::adopt_rows_without_issuer(&settings.database, first)?;
            if adopted > 0 {
                log::info!("{adopted} users row(s) written before users had an issuer now belong to {first}");
            }
        }
        let (users, writers) = UserStore::open_until_closed(&settings.database, settings.last_seen_interval)?;
        let users = web::Data::new(users);
        let keys = web::Data::new(IssuerKeys::new(
            &settings.validation.issuers,
            settings.jwks_url.as_ref(),
            &settings.keys,
        )?);
        let validator = web::Data::new(TokenValidator::new(&settings.validation, &keys));
        let mut dpop = DpopVerifier::new(&settings.dpop);
        if settings.database.is_postgres() && settings.dpop.mode != DpopMode::Disabled {
            // Several instances may share it: each refuses the others' proofs.
            dpop = dpop.sharing(Arc::new(ProofLedger::start(&settings.database)?));
        }
        let dpop = web::Data::new(dpop);
        let refreshed = keys.clone();

        let address = format!("{}:{}", settings.host, settings.port);
        let bind_error = |source| StartupError::Bind {
            address: address.clone(),
            source,
        };
        let port = listener.local_addr().map_err(bind_error)?.port();
        let public_url = web::Data::new(PublicUrl::new(
            settings.public_base_url.as_ref(),
            &settings.host,
            port,
        ));
        let metadata_alias = public_url.resource_metadata_alias();
        let docs = web::Data::new(Docs::new(
            &settings,
            &routes::table(),
            dev.as_ref().map(|dev| &dev.tokens[..]),
        ));
        let is_dev = dev.is_some();
        let dev_issuer = dev.map(|dev| web::Data::new(dev.issuer));
        // No load balancer watches `dev`: it stops without the announcement.
        let drain = Arc::new(Drain::new(settings.connections.shutdown_grace, !is_dev));
        let tracked = Arc::clone(&drain);

        let origin = settings.client_origin_url.clone();
        let app = move || {
            let drain = Arc::clone(&tracked);
            App::new()
                .app_data(web::Data::from(Arc::clone(&drain)))
                .app_data(validator.clone())
                .app_data(dpop.clone())
                .app_data(users.clone())
                .app_data(keys.clone())
                .app_data(docs.clone())
                .app_data(public_url.clone())
                .configure(routes::configure)
                .configure(|cfg| {
                    if let Some(alias) = &metadata_alias {
                        routes::serve_metadata_at(cfg, alias);
                    }
                })
                .configure(|cfg| {
                    if let Some(dev_issuer) = &dev_issuer {
                        dev_issuer.configure(cfg);
                    }
                })
                .configure(more_routes.clone())
                .default_service(web::to(routes::not_found))
                // In `dev`, no request for another name reaches a route (and
                // the tokens); the refusal gets every header below.
                .wrap(Condition::new(is_dev, from_fn(crate::dev::loopback_host_only)))
                .wrap(
                    Cors::default()
                        .allowed_origin(&origin)
                        .allowed_methods(["GET"])
                        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, DPOP])
                        // What a browser client reads of a refusal or a reply: the
                        // challenge (and from it the protected resource metadata's
                        // address), and a DPoP nonce.
                        .expose_headers([header::WWW_AUTHENTICATE, DPOP_NONCE])
                        .max_age(86_400),
                )
                .wrap(from_fn(no_store_when_authenticated))
                .wrap(routes::json_error_bodies())
                // Responses that set their own CSP (the docs page) keep it.
                .wrap(
                    DefaultHeaders::new()
                        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                        .add((header::X_FRAME_OPTIONS, "deny"))
                        .add((
                            header::CONTENT_SECURITY_POLICY,
                            "default-src 'none'; frame-ancestors 'none'",
                        )),
                )
                .wrap(from_fn(telemetry::observe))
                .wrap_fn(move |req, srv| drain.track(srv.call(req)))
        };
        let server =
            connection::serve(listener, settings.workers, settings.connections, app).map_err(bind_error)?;
        let metrics = match &settings.metrics_addr {
            Some(address) => Some(metrics_server(address)?),
            None => None,
        };

        // Start-up never waits for the tenant: keys load and refresh beside it.
        for (_, store) in refreshed.iter() {
            tokio::spawn(Arc::clone(store).keep_fresh());
        }
        log::info!(
            "listening on http://{}",
            connection::host_port(&settings.host, port)
        );
        Ok(Self {
            port,
            server,
            metrics,
            drain,
            writers,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The metrics listener's port, when `METRICS_ADDR` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// Serves until SIGTERM or SIGINT, then drains within
    /// `SHUTDOWN_GRACE_SECS` (see docs/deployment.md, "Graceful shutdown"); the
    /// metrics listener stops with the API.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics = self.metrics.map(|(_, metrics)| metrics);
        self.drain.serve(self.server, metrics, self.writers).await
    }
}

/// The metrics listener: `GET /metrics` (OpenMetrics text) and nothing else,
/// on an address of its own, so that it is never reachable where the API is.
fn metrics_server(address: &str) -> Result<(u16, Server), StartupError> {
    let bind_error = |source| StartupError::BindMetrics {
        address: address.to_owned(),
        source,
    };
    let listener = TcpListener::bind(address).map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    let server = HttpServer::new(|| {
        App::new().route(
            "/metrics",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
                    .body(METRICS.encode())
            }),
        )
    })
    .workers(1)
    // Stopped by the API's drain, at its end.
    .disable_signals()
    .listen(listener)
    .map_err(bind_error)?
    .run();
    log::info!("metrics on http://{address}/metrics");
    Ok((port, server))
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
    let address = connection::host_port(host, port);
    TcpListener::bind(&address).map_err(|source| StartupError::Bind { address, source })
}
