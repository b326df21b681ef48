//! The `stepline` program, built inside the tests crate so that the
//! end-to-end tests can start it as a real process (`CARGO_BIN_EXE_*` names
//! only a package's own binaries). It is the same entry point as
//! `server/src/main.rs`: `stepline::cli::run`.

fn main() -> std::process::ExitCode {
    let code = stepline::cli::run(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    std::process::ExitCode::from(code)
}
