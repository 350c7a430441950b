//! docs/your-own-interface.md, done as a user would: a throw-away crate *outside* this project
//! (in the system's temporary directory)
//! depends on comasync by path, declares its own interface, and runs a `.cas` script and the
//! server test kit against it in its own `cargo test`.
//!
//! The crate's test is `examples/your_own_interface.rs` (with its script
//! `examples/your_own_interface.cas`), copied verbatim, so the example, the guide and this test
//! cannot drift apart. It is built in its own target directory with this project's
//! `Cargo.lock`, so it uses the dependency versions this project was tested with.

use std::path::Path;

#[path = "common/throw_away.rs"]
mod throw_away;

/// The throw-away crate's `Cargo.toml`. `[workspace]` keeps cargo from taking it for a member
/// of a workspace above it.
fn manifest(comasync: &Path) -> String {
    format!(
        r#"[package]
name = "calculator"
version = "0.1.0"
edition = "2021"
publish = false

[workspace]

[dev-dependencies]
comasync = {{ path = {path:?}, features = ["testing"] }}

[[test]]
name = "your_own_interface"
path = "tests/your_own_interface.rs"
harness = false
"#,
        path = comasync.display().to_string()
    )
}

#[test]
fn a_throw_away_crate_scripts_and_kit_tests_its_own_interface() {
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    let examples = project.join("examples");
    let stdout = throw_away::cargo_test(
        "your-own-crate",
        project,
        &manifest(project),
        "A user's crate.",
        &[
            (
                examples.join("your_own_interface.rs"),
                "your_own_interface.rs",
            ),
            (
                examples.join("your_own_interface.cas"),
                "your_own_interface.cas",
            ),
        ],
        &[],
    );
    // The example prints what it checked; the crate really ran the script and the kit.
    assert!(stdout.contains("script passed"), "no script ran:\n{stdout}");
    assert!(
        stdout.contains("kit passed"),
        "the kit did not run:\n{stdout}"
    );
}
