//! `weft-echo`: the test app (see `weft_testbed::echo`). Prints
//! `weft-echo ready address=ADDR` once bound.

use clap::Parser;
use std::net::SocketAddr;
use std::process::ExitCode;
use weft_testbed::echo::{self, EchoConfig};

#[derive(Debug, Parser)]
#[command(
    name = "weft-echo",
    version,
    about = "Echo app for Weft's end-to-end tests"
)]
struct Args {
    /// Where to listen (port 0 picks a free one).
    #[arg(long, env = "WEFT_ECHO_ADDRESS", default_value = "127.0.0.1:0")]
    address: SocketAddr,
    /// The service name it reports.
    #[arg(long, env = "WEFT_ECHO_SERVICE", default_value = "echo")]
    service: String,
    /// The zone name it reports.
    #[arg(long, env = "WEFT_ECHO_ZONE", default_value = "")]
    zone: String,
    /// The instance name it reports (default: the address).
    #[arg(long, env = "WEFT_ECHO_INSTANCE")]
    instance: Option<String>,
    /// Share of requests answered with --fail-status (0.0 to 1.0), spread evenly.
    #[arg(long, env = "WEFT_ECHO_FAIL_RATE", default_value_t = 0.0)]
    fail_rate: f64,
    #[arg(long, env = "WEFT_ECHO_FAIL_STATUS", default_value_t = 503)]
    fail_status: u16,
    /// Raw TCP echo instead of HTTP.
    #[arg(long, env = "WEFT_ECHO_TCP")]
    tcp: bool,
    /// Serve HTTPS with this certificate chain (PEM; with --tls-key).
    #[arg(long, env = "WEFT_ECHO_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The key of --tls-cert (PEM).
    #[arg(long, env = "WEFT_ECHO_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(0.0..=1.0).contains(&args.fail_rate) {
        eprintln!("weft-echo: --fail-rate must be between 0 and 1");
        return ExitCode::from(64);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("weft-echo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let (listener, bound) = echo::bind(args.address).await?;
        let config = EchoConfig {
            service: args.service,
            zone: args.zone,
            instance: args.instance.unwrap_or_else(|| bound.to_string()),
            fail_rate: args.fail_rate,
            fail_status: args.fail_status,
        };
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(c), Some(k)) => Some((std::fs::read(c)?, std::fs::read(k)?)),
            _ => None,
        };
        println!("weft-echo ready address={bound}");
        match tls {
            Some((cert, key)) => echo::serve_https(listener, config, &cert, &key).await,
            None if args.tcp => echo::serve_tcp(listener, config).await,
            None => echo::serve_http(listener, config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weft-echo: {e}");
            ExitCode::FAILURE
        }
    }
}
