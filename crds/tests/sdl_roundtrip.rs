//! The SDL model keeps the document's meaning through serde: YAML → model → YAML/JSON → model gives
//! the same document, groups, manifest and version. A custom resource can embed it (JSON Schema).

use std::path::{Path, PathBuf};

use crds::sdl::{Sdl, SdlDocument};

#[path = "../../testdata/sdl_files.rs"]
mod sdl_files;

fn all_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = sdl_files::all_sdl_files();
    files.extend(sdl_files::yaml_files(&root.join("tests/sdl-edge")));
    files.sort();
    files
}

#[test]
fn accepted_documents_survive_yaml_and_json_round_trips() {
    let mut checked = 0;
    for file in all_files() {
        let text = std::fs::read_to_string(&file).expect("read SDL");
        let Ok(sdl) = Sdl::parse(&text) else {
            continue;
        };
        let name = file.display();

        let yaml = serde_yaml::to_string(sdl.document()).expect("to YAML");
        let again = Sdl::parse(&yaml).unwrap_or_else(|e| panic!("{name}: re-parse failed: {e}"));
        assert_eq!(again.document(), sdl.document(), "{name}: YAML round trip");
        assert_eq!(again.groups(), sdl.groups(), "{name}: groups after YAML");
        assert_eq!(
            again.manifest_version(),
            sdl.manifest_version(),
            "{name}: version after YAML"
        );

        let json = serde_json::to_string(sdl.document()).expect("to JSON");
        let doc: SdlDocument = serde_json::from_str(&json).expect("from JSON");
        let from_json = Sdl::from_document(&doc)
            .unwrap_or_else(|e| panic!("{name}: document from JSON rejected: {e}"));
        assert_eq!(
            from_json.manifest(),
            sdl.manifest(),
            "{name}: manifest after JSON"
        );
        assert_eq!(
            from_json.manifest_version(),
            sdl.manifest_version(),
            "{name}: version after JSON"
        );
        checked += 1;
    }
    assert!(checked > 100, "only {checked} accepted SDL files found");
}

#[test]
fn the_model_has_a_json_schema() {
    let schema = serde_json::to_value(schemars::schema_for!(SdlDocument)).expect("schema");
    let required = schema["required"].as_array().expect("required list");
    for field in ["version", "services", "profiles", "deployment"] {
        assert!(required.iter().any(|r| r == field), "{field} not required");
    }
    assert!(schema["properties"]["reclamation"].is_object());
}
