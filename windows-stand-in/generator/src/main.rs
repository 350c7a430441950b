//! Runs `windows_bindgen::bindgen` with the command-line arguments (see ../generate.sh).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Warnings (items skipped for missing dependencies) are printed, not fatal.
    let warnings = windows_bindgen::bindgen(args);
    eprint!("{warnings}");
}
