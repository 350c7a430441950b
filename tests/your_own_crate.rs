//! docs/your-own-interface.md, done as a user would: a throw-away crate *outside* this project
//! (in the system's temporary directory)
//! depends on comasync by path, declares its own interface, and runs a `.cas` script and the
//! server test kit against it in its own `cargo test`.
//!
//! The crate's test is `examples/your_own_interface.rs` (with its script
//! `examples/your_own_interface.cas`), copied verbatim, so the example, the guide and this test
//! cannot drift apart. It is built in its own target directory with this project's
//! `Cargo.lock`, so it uses the dependency versions this project was tested with.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

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

/// A stable hash of the project's path (FNV-1a), naming its throw-away crate's folder.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn write(path: PathBuf, text: &str) {
    fs::create_dir_all(path.parent().expect("a parent directory")).expect("create the directory");
    fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[test]
fn a_throw_away_crate_scripts_and_kit_tests_its_own_interface() {
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Outside the project: the system's temporary directory (kept between runs, so its target
    // directory makes a rerun quick), one folder per checkout of the project.
    let krate = env::temp_dir().join(format!(
        "comasync-your-own-crate-{:016x}",
        fnv1a(project.to_string_lossy().as_bytes())
    ));
    let _ = fs::remove_dir_all(krate.join("tests"));
    write(krate.join("Cargo.toml"), &manifest(project));
    write(krate.join("src/lib.rs"), "//! A user's crate.\n");
    let lock = fs::read_to_string(project.join("Cargo.lock")).expect("the project's Cargo.lock");
    write(krate.join("Cargo.lock"), &lock);
    for file in ["your_own_interface.rs", "your_own_interface.cas"] {
        let text = fs::read_to_string(project.join("examples").join(file)).expect("the example");
        write(krate.join("tests").join(file), &text);
    }

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .arg("test")
        .arg("--quiet")
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", krate.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo test in the throw-away crate");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "cargo test in {} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        krate.display()
    );
    // The example prints what it checked; the crate really ran the script and the kit.
    assert!(stdout.contains("script passed"), "no script ran:\n{stdout}");
    assert!(
        stdout.contains("kit passed"),
        "the kit did not run:\n{stdout}"
    );
}
