#![allow(dead_code)] // Each includer uses only some of these.

// Included with `#[path]` by the tests and benches that read many SDL files, so that they all agree
// on where test data lives: the repository's own `testdata/sdl/` always, and `../shared/testdata/sdl/`
// beside the clone when it exists (extra cases a developer may have; never required).

use std::path::{Path, PathBuf};

/// The repository's root (the workspace directory).
pub fn repo_root() -> PathBuf {
    let mut dir = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    while !dir.join("testdata/sdl").is_dir() {
        assert!(
            dir.pop(),
            "no testdata/sdl above {}",
            env!("CARGO_MANIFEST_DIR")
        );
    }
    dir
}

/// The repository's SDL test data.
pub fn repo_sdl_dir() -> PathBuf {
    repo_root().join("testdata/sdl")
}

/// `../shared/testdata/sdl` beside the clone, when it exists.
pub fn shared_sdl_dir() -> Option<PathBuf> {
    let dir = repo_root().join("../shared/testdata/sdl");
    dir.is_dir().then_some(dir)
}

/// Every `.yaml`/`.yml` file under `dir`, recursively, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// The repository's SDL files, then those of `../shared/testdata/sdl` that the repository does not
/// carry under the same relative path.
pub fn all_sdl_files() -> Vec<PathBuf> {
    let repo = repo_sdl_dir();
    let mut files = yaml_files(&repo);
    if let Some(shared) = shared_sdl_dir() {
        for file in yaml_files(&shared) {
            let rel = file.strip_prefix(&shared).expect("under the directory");
            if !repo.join(rel).exists() {
                files.push(file);
            }
        }
    }
    files
}
