//! The `comasync` command-line tool.
#![forbid(unsafe_code)]

fn main() {
    println!("comasync");
}
