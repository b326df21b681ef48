//! `stepline serve`: the main job. The HTTP server arrives with the HTTP API
//! work; until then the command exists with its final arguments and says
//! plainly that there is nothing to serve yet.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:8083")]
    listen: SocketAddr,
    /// Directory of the embedded database.
    #[arg(long, default_value = "./stepline-data")]
    data_dir: PathBuf,
    /// Operator configuration file (stepline.toml).
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn run(args: &Args, _stdout: &mut dyn Write, stderr: &mut dyn Write) -> u8 {
    let _ = writeln!(
        stderr,
        "stepline serve: the HTTP server is not built yet; this command will listen on {} with its data in {}.\n\
         What works today: `stepline validate FILE...`.",
        args.listen,
        args.data_dir.display()
    );
    if let Some(config) = &args.config {
        let _ = writeln!(stderr, "(configuration file given: {})", config.display());
    }
    1
}
