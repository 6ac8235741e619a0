//! Leptos.toml (read by the server at run time) must agree with the build settings the build step
//! (scripts/site) and cargo-leptos read from Cargo.toml, or the server looks for the bundle in the wrong place.

use std::path::Path;

#[test]
fn leptos_toml_matches_the_build_settings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let runtime =
        leptos::config::get_configuration(Some(root.join("Leptos.toml").to_str().unwrap()))
            .expect("Leptos.toml parses")
            .leptos_options;

    let cargo: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let build = &cargo["workspace"]["metadata"]["leptos"][0];
    let s = |k: &str| {
        build[k]
            .as_str()
            .unwrap_or_else(|| panic!("Cargo.toml lacks {k}"))
            .to_owned()
    };

    assert_eq!(*runtime.output_name, s("output-name"));
    assert_eq!(*runtime.site_root, s("site-root"));
    assert_eq!(*runtime.site_pkg_dir, s("site-pkg-dir"));
    assert_eq!(runtime.site_addr.to_string(), s("site-addr"));
    assert_eq!(
        i64::from(runtime.reload_port),
        build["reload-port"].as_integer().unwrap()
    );
    // The server must look for hashed names exactly when the build writes them.
    assert_eq!(
        runtime.hash_files,
        build
            .get("hash-files")
            .and_then(toml::Value::as_bool)
            .unwrap_or(false)
    );
}
