//! `stepline`: see `stepline --help`.

// mimalloc rather than glibc's malloc: 25-30 % more starts per second for
// more resident memory (docs/performance.md, "mimalloc").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let code = stepline::cli::run(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    std::process::ExitCode::from(code)
}
