//! `akash-provider sdl validate|groups|manifest|version FILE`: check an SDL file and print what the
//! chain and the provider get from it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crds::sdl::{Sdl, SdlError};

/// Arguments of `akash-provider sdl`.
#[derive(Debug, clap::Args)]
pub struct SdlArgs {
    #[command(subcommand)]
    pub action: SdlAction,
}

/// What to do with the SDL file (`-` reads standard input).
#[derive(Debug, clap::Subcommand)]
pub enum SdlAction {
    /// Check the file; print OK, or every problem with the path of its field and exit with 1.
    Validate { file: PathBuf },
    /// Print the on-chain deployment groups as JSON.
    Groups { file: PathBuf },
    /// Print the provider manifest as JSON.
    Manifest {
        file: PathBuf,
        /// Print the exact canonical JSON that is hashed into the manifest version.
        #[arg(long)]
        canonical: bool,
    },
    /// Print the manifest version (the deployment hash) in hex.
    Version { file: PathBuf },
    /// Print a `Manifest` resource holding the SDL, for `kubectl apply -f -`.
    ToCr {
        file: PathBuf,
        #[command(flatten)]
        options: crate::to_cr::ToCrOptions,
    },
}

fn read(file: &Path) -> Result<String, String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        return Ok(text);
    }
    std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}

fn report(file: &Path, error: &SdlError) {
    eprintln!("{}: invalid SDL", file.display());
    for issue in error.issues() {
        if issue.path.is_empty() {
            eprintln!("  {}", issue.message);
        } else {
            eprintln!("  {issue}");
        }
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Runs one `sdl` action; exit code 0 on success, 1 for an invalid SDL, 2 when the file cannot be read.
pub fn run(args: &SdlArgs) -> ExitCode {
    let file = match &args.action {
        SdlAction::Validate { file }
        | SdlAction::Groups { file }
        | SdlAction::Manifest { file, .. }
        | SdlAction::Version { file }
        | SdlAction::ToCr { file, .. } => file,
    };
    let text = match read(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let sdl = match Sdl::parse(&text) {
        Ok(sdl) => sdl,
        Err(e) => {
            report(file, &e);
            return ExitCode::from(1);
        }
    };
    match &args.action {
        SdlAction::Validate { .. } => println!("OK"),
        SdlAction::Groups { .. } => println!("{}", json(&sdl.groups())),
        SdlAction::Manifest {
            canonical: true, ..
        } => println!("{}", sdl.manifest_json()),
        SdlAction::Manifest { .. } => println!("{}", json(&sdl.manifest())),
        SdlAction::Version { .. } => println!("{}", sdl.manifest_version_hex()),
        SdlAction::ToCr { options, .. } => match crate::to_cr::render(&sdl, file, options) {
            Ok(yaml) => print!("{yaml}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
    }
    ExitCode::SUCCESS
}
