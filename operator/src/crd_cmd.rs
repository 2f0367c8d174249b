//! `akash-provider crd`: prints the custom resource definitions, or writes one file per definition.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct CrdArgs {
    /// Write one `<plural>.akash.network.yaml` per definition into this directory instead of
    /// printing them all (this is how `helm/akash-provider/crds/` is generated).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: &CrdArgs) -> ExitCode {
    let files = crds::resources::files();
    let Some(dir) = &args.dir else {
        let docs: Vec<&str> = files.iter().map(|(_, yaml)| yaml.as_str()).collect();
        print!("{}", docs.join("---\n"));
        return ExitCode::SUCCESS;
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for (name, yaml) in &files {
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, yaml) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
