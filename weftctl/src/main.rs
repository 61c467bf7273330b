//! `weftctl`: parses the command line, runs the command, prints an error and
//! exits 1 when it fails (clap exits 2 on a usage error).

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = weftctl::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr();
    let mut stdin = std::io::stdin().lock();
    let io = weftctl::Io {
        out: &mut stdout,
        err: &mut stderr,
        stdin: &mut stdin,
    };
    match runtime.block_on(weftctl::run(cli, io)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`weftctl get meshes | head -1`): nothing to report.
        Err(weftctl::Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
