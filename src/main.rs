use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = kneecam::cli::Cli::parse();
    let _log_guard = kneecam::logging::init();
    match kneecam::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("kneecam: {}", kneecam::cli::printable(&format!("{err:#}")));
            kneecam::cli::exit_code(&err)
        }
    }
}
