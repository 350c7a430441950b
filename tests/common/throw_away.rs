//! A throw-away crate of a user's, outside the project: written into the system's temporary
//! directory (kept between runs, so its target directory makes a rerun quick; one folder per
//! checkout of the project), given the project's `Cargo.lock`, and tested with `cargo test`.
//! Shared by `tests/your_own_crate.rs` and `comasync-windows/tests/windows_rs_crate.rs`
//! (included by `#[path]`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

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

/// Writes the crate `comasync-<name>-<hash of project>` (its `manifest`, an empty library
/// documented as `lib_doc`, the project's lock file, and each `(source, name)` of `tests` as
/// `tests/<name>`), runs `cargo test --quiet <cargo_args>` in it and returns its standard
/// output; panics with both outputs if the run fails.
pub fn cargo_test(
    name: &str,
    project: &Path,
    manifest: &str,
    lib_doc: &str,
    tests: &[(PathBuf, &str)],
    cargo_args: &[&str],
) -> String {
    let krate = env::temp_dir().join(format!(
        "comasync-{name}-{:016x}",
        fnv1a(project.to_string_lossy().as_bytes())
    ));
    let _ = fs::remove_dir_all(krate.join("tests"));
    write(krate.join("Cargo.toml"), manifest);
    write(krate.join("src/lib.rs"), &format!("//! {lib_doc}\n"));
    let lock = fs::read_to_string(project.join("Cargo.lock")).expect("the project's Cargo.lock");
    write(krate.join("Cargo.lock"), &lock);
    for (source, file) in tests {
        let text =
            fs::read_to_string(source).unwrap_or_else(|e| panic!("read {}: {e}", source.display()));
        write(krate.join("tests").join(file), &text);
    }
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["test", "--quiet"])
        .args(cargo_args)
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", krate.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo test in the throw-away crate");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "cargo test in {} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        krate.display()
    );
    stdout
}
