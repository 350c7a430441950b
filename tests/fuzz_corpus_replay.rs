//! Replays every file of the fuzz corpora (`fuzz/corpus/<target>/`) through the same decoder and
//! model check as the cargo-fuzz targets, on the stable toolchain, so the targets and their
//! seeds never rot.
//!
//! The seeds are written from readable operation lists by the ignored test
//! `write_seed_corpus` (`cargo test --features testing --test fuzz_corpus_replay --
//! --ignored`), which encodes them with `comasync::testing::decode`; files that libFuzzer
//! found and that were copied into the corpus (for example a crash turned regression) are
//! replayed the same way.

use std::fs;
use std::path::{Path, PathBuf};

use comasync::hresult::{E_FAIL, RPC_E_CALL_CANCELED, S_FALSE, S_OK};
use comasync::testing::aggregation::{check_aggregation, AggOp, Hook, HookPoint};
use comasync::testing::decode::{self, WorldProfile};
use comasync::testing::model::{
    EventClass, FinishMode, ModelOp, COWAIT_WAITALL, INFINITE, READ, RPC_C_CANCEL_INFINITE_TIMEOUT,
    WRITE,
};
use comasync::testing::runner::{check_call_ops, check_world_ops, RunOptions};
use comasync::testing::server_host::{check_server_host, HostOp};
use comasync::testing::PROBE_ASYNC_IID;

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn files(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus(target);
    let mut out: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{} has no seeds", dir.display());
    out
}

#[test]
fn every_call_object_corpus_file_agrees_with_the_model() {
    for (path, bytes) in files("call_object") {
        let (mode, ops) = decode::call_ops(&bytes);
        if let Err(m) = check_call_ops(mode, &ops, &RunOptions::fast()) {
            panic!("{}:\n{m}", path.display());
        }
    }
}

#[test]
fn every_events_corpus_file_agrees_with_the_model() {
    for (path, bytes) in files("events") {
        let (kinds, ops) = decode::world_ops(WorldProfile::Events, &bytes);
        if let Err(m) = check_world_ops(&kinds, &ops, &RunOptions::fast()) {
            panic!("{}:\n{m}", path.display());
        }
    }
}

#[test]
fn every_co_wait_corpus_file_agrees_with_the_model() {
    for (path, bytes) in files("co_wait") {
        let (kinds, ops) = decode::world_ops(WorldProfile::CoWait, &bytes);
        if let Err(m) = check_world_ops(&kinds, &ops, &RunOptions::fast()) {
            panic!("{}:\n{m}", path.display());
        }
    }
}

#[test]
fn every_aggregation_corpus_file_keeps_the_rules() {
    for (path, bytes) in files("aggregation") {
        let (mode, ops) = decode::agg_ops(&bytes);
        if let Err(m) = check_aggregation(mode, &ops) {
            panic!("{}:\n{m}", path.display());
        }
    }
}

#[test]
fn every_server_host_corpus_file_keeps_the_rules() {
    for (path, bytes) in files("server_host") {
        let (mode, abandon, ops) = decode::host_ops(&bytes);
        if let Err(m) = check_server_host(mode, abandon, &ops) {
            panic!("{}:\n{m}", path.display());
        }
    }
}

fn hook(point: HookPoint, finish: usize, then_begin: Option<usize>) -> AggOp {
    AggOp::Arm(Hook {
        point,
        finish,
        then_begin,
    })
}

/// The aggregation seeds, as readable operation lists.
fn agg_seeds() -> Vec<(&'static str, FinishMode, Vec<AggOp>)> {
    use AggOp::*;
    use HookPoint::{BeforeSignal, InSignal};
    let fails = |reset, signal| OuterFails { reset, signal };
    vec![
        (
            "seed-callback-finish-in-signal",
            FinishMode::Blocking,
            vec![
                Begin(READ),
                hook(InSignal, READ, None),
                ServerComplete(S_OK),
                Finish(READ),
                Begin(WRITE),
                ServerComplete(E_FAIL),
                Finish(WRITE),
            ],
        ),
        (
            "seed-outer-reset-fails",
            FinishMode::Strict,
            vec![
                fails(true, false),
                Begin(READ),
                Finish(READ),
                fails(false, false),
                Begin(READ),
                ServerComplete(S_OK),
                Finish(READ),
            ],
        ),
        (
            "seed-outer-signal-fails",
            FinishMode::Strict,
            vec![
                fails(false, true),
                Begin(READ),
                ServerComplete(S_OK),
                Finish(READ),
                fails(false, false),
                Begin(WRITE),
                Cancel(0),
                Finish(WRITE),
            ],
        ),
        (
            "seed-cancel-windows",
            FinishMode::Strict,
            vec![
                Begin(READ),
                Cancel(1),
                TestCancel,
                CancelTimeout,
                Finish(READ),
                Begin(READ),
                Cancel(RPC_C_CANCEL_INFINITE_TIMEOUT),
                ServerComplete(S_OK),
                Finish(READ),
                Begin(WRITE),
                Cancel(3600),
                Release,
            ],
        ),
        (
            "seed-hook-before-signal-finishes",
            FinishMode::Blocking,
            vec![
                Begin(READ),
                hook(BeforeSignal, READ, None),
                ServerComplete(S_OK),
                Begin(WRITE),
                ServerComplete(S_FALSE),
                Finish(WRITE),
            ],
        ),
        (
            "seed-hook-in-signal-begins-the-next-call",
            FinishMode::Blocking,
            vec![
                Begin(READ),
                hook(InSignal, READ, Some(WRITE)),
                ServerComplete(S_OK),
                ServerComplete(S_FALSE),
                Finish(WRITE),
                Release,
            ],
        ),
    ]
}

/// The hosted-server seeds, as readable operation lists: (name, mode, abandon, ops).
fn host_seeds() -> Vec<(&'static str, FinishMode, bool, Vec<HostOp>)> {
    use HostOp::*;
    let begin = |method| Begin {
        method,
        preempted: false,
    };
    vec![
        (
            "seed-begin-work-finish",
            FinishMode::Blocking,
            false,
            vec![
                begin(READ),
                Work,
                Finish(READ),
                begin(WRITE),
                Finish(WRITE),
                Work,
                Finish(WRITE),
            ],
        ),
        (
            "seed-cancel-window-heard-by-the-server",
            FinishMode::Strict,
            false,
            vec![
                begin(READ),
                Cancel(3600),
                Work,
                Finish(READ),
                begin(READ),
                Cancel(1),
                CancelTimeout,
                Finish(READ),
                Work,
                begin(WRITE),
                Work,
                Finish(WRITE),
            ],
        ),
        (
            "seed-server-refuses",
            FinishMode::Strict,
            false,
            vec![
                ServerBeginFails(true),
                begin(READ),
                Finish(READ),
                ServerBeginFails(false),
                begin(READ),
                Cancel(0),
                Finish(READ),
                begin(WRITE),
                Finish(WRITE),
                WorkAll,
                begin(WRITE),
                WorkAll,
                Finish(WRITE),
            ],
        ),
        (
            "seed-release-with-work-queued",
            FinishMode::Blocking,
            false,
            vec![begin(READ), TestCancel, Release, WorkAll],
        ),
        (
            "seed-infinite-cancel-resolved-by-the-worker",
            FinishMode::Blocking,
            false,
            vec![
                begin(WRITE),
                Cancel(RPC_C_CANCEL_INFINITE_TIMEOUT),
                TestCancel,
                Work,
                Finish(WRITE),
                TestCancel,
            ],
        ),
    ]
}

fn complete(hr: comasync::hresult::HRESULT, outs: &[u32]) -> ModelOp {
    ModelOp::ServerComplete {
        hr,
        outs: outs.to_vec(),
    }
}

fn wait(flags: u32, timeout: u32) -> ModelOp {
    ModelOp::Wait { flags, timeout }
}

/// The seeds, as readable operation lists.
fn call_seeds() -> Vec<(&'static str, FinishMode, Vec<ModelOp>)> {
    vec![
        (
            "seed-begin-complete-finish-reuse",
            FinishMode::Blocking,
            vec![
                ModelOp::Begin(READ),
                wait(0, 0),
                complete(S_OK, &[1, 2]),
                wait(0, INFINITE),
                ModelOp::Finish(READ),
                ModelOp::Finish(READ),
                ModelOp::Begin(WRITE),
                complete(E_FAIL, &[]),
                ModelOp::Finish(WRITE),
            ],
        ),
        (
            "seed-busy-begin-and-strict-finish",
            FinishMode::Strict,
            vec![
                ModelOp::Begin(READ),
                ModelOp::Begin(WRITE),
                ModelOp::Finish(READ),
                ModelOp::Finish(WRITE),
                complete(S_FALSE, &[7]),
                ModelOp::Begin(READ),
                ModelOp::Finish(READ),
            ],
        ),
        (
            "seed-cancel-zero-and-late-completion",
            FinishMode::Strict,
            vec![
                ModelOp::Begin(READ),
                ModelOp::Cancel(0),
                ModelOp::Cancel(0),
                ModelOp::TestCancel,
                ModelOp::Finish(READ),
                ModelOp::TestCancel,
                ModelOp::Begin(READ),
                complete(S_OK, &[3]),
                ModelOp::Finish(READ),
            ],
        ),
        (
            "seed-cancel-window-resolved-by-server",
            FinishMode::Blocking,
            vec![
                ModelOp::Begin(WRITE),
                ModelOp::Cancel(RPC_C_CANCEL_INFINITE_TIMEOUT),
                ModelOp::TestCancel,
                ModelOp::Cancel(3600),
                complete(RPC_E_CALL_CANCELED, &[]),
                ModelOp::Finish(WRITE),
            ],
        ),
        (
            "seed-query-interface-and-release",
            FinishMode::Blocking,
            vec![
                ModelOp::QueryInterface(PROBE_ASYNC_IID),
                ModelOp::QueryInterface(decode::iids()[5]),
                ModelOp::Begin(READ),
                ModelOp::Release,
                complete(S_OK, &[]),
                ModelOp::Begin(READ),
                wait(0x20, 0),
                ModelOp::QueryInterface(decode::iids()[2]),
            ],
        ),
    ]
}

fn world_seeds(profile: WorldProfile) -> Vec<(&'static str, Vec<EventClass>, Vec<ModelOp>)> {
    use EventClass::{Auto, ManualReset};
    let co_wait = |flags, timeout, handles: Option<Vec<usize>>, index_present| ModelOp::CoWait {
        flags,
        timeout,
        handles,
        index_present,
    };
    let mut seeds = vec![
        (
            "seed-signal-wait-reset",
            vec![ManualReset, Auto],
            vec![
                ModelOp::EventSignal(0),
                ModelOp::EventSignal(1),
                ModelOp::EventWait {
                    event: 1,
                    flags: 0,
                    timeout: INFINITE,
                },
                ModelOp::EventWait {
                    event: 1,
                    flags: 0,
                    timeout: 1,
                },
                ModelOp::EventWait {
                    event: 0,
                    flags: COWAIT_WAITALL,
                    timeout: 0,
                },
                ModelOp::EventReset(0),
                ModelOp::EventWait {
                    event: 0,
                    flags: 0x20,
                    timeout: 0,
                },
            ],
        ),
        (
            "seed-co-wait-any-all-and-argument-checks",
            vec![Auto, ManualReset, Auto],
            vec![
                ModelOp::EventSignal(2),
                ModelOp::EventSignal(1),
                co_wait(0, 0, Some(vec![0, 2, 1]), true),
                co_wait(COWAIT_WAITALL, 0, Some(vec![1, 1]), true),
                co_wait(COWAIT_WAITALL, 1, Some(vec![0, 1]), true),
                ModelOp::EventSignal(0),
                co_wait(COWAIT_WAITALL, INFINITE, Some(vec![0, 1]), true),
                co_wait(0, 0, None, true),
                co_wait(0, 0, Some(vec![]), true),
                co_wait(0, 0, Some(vec![0]), false),
                co_wait(0, 0, Some((0..65).map(|i| i % 3).collect()), true),
            ],
        ),
    ];
    if profile == WorldProfile::Events {
        seeds.push((
            "seed-container",
            vec![Auto, ManualReset],
            vec![
                ModelOp::WaitMultiple {
                    flags: 0,
                    timeout: 0,
                    out_present: true,
                },
                ModelOp::AddSynchronize(Some(0)),
                ModelOp::AddSynchronize(Some(1)),
                ModelOp::AddSynchronize(Some(0)),
                ModelOp::AddSynchronize(None),
                ModelOp::EventSignal(1),
                ModelOp::EventSignal(0),
                ModelOp::WaitMultiple {
                    flags: 0,
                    timeout: INFINITE,
                    out_present: true,
                },
                ModelOp::WaitMultiple {
                    flags: 0,
                    timeout: 1,
                    out_present: true,
                },
                ModelOp::WaitMultiple {
                    flags: COWAIT_WAITALL,
                    timeout: 0,
                    out_present: true,
                },
                ModelOp::WaitMultiple {
                    flags: 0,
                    timeout: 0,
                    out_present: false,
                },
            ],
        ));
    }
    seeds
}

#[test]
fn the_seed_lists_encode_and_agree_with_the_model() {
    for (name, mode, ops) in call_seeds() {
        let bytes = decode::encode_call_ops(mode, &ops).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(decode::call_ops(&bytes), (mode, ops.clone()), "{name}");
        if let Err(m) = check_call_ops(mode, &ops, &RunOptions::fast()) {
            panic!("{name}:\n{m}");
        }
    }
    for (name, mode, ops) in agg_seeds() {
        let bytes = decode::encode_agg_ops(mode, &ops).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(decode::agg_ops(&bytes), (mode, ops.clone()), "{name}");
        if let Err(m) = check_aggregation(mode, &ops) {
            panic!("{name}:\n{m}");
        }
    }
    for (name, mode, abandon, ops) in host_seeds() {
        let bytes =
            decode::encode_host_ops(mode, abandon, &ops).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(
            decode::host_ops(&bytes),
            (mode, abandon, ops.clone()),
            "{name}"
        );
        if let Err(m) = check_server_host(mode, abandon, &ops) {
            panic!("{name}:\n{m}");
        }
    }
    for profile in [WorldProfile::Events, WorldProfile::CoWait] {
        for (name, kinds, ops) in world_seeds(profile) {
            let bytes =
                decode::encode_world_ops(profile, &kinds, &ops).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(
                decode::world_ops(profile, &bytes),
                (kinds.clone(), ops.clone())
            );
            if let Err(m) = check_world_ops(&kinds, &ops, &RunOptions::fast()) {
                panic!("{name}:\n{m}");
            }
        }
    }
}

/// Writes the seed corpus files (run with `--ignored` after changing a seed list).
#[test]
#[ignore = "writes fuzz/corpus/*/seed-*; run by hand"]
fn write_seed_corpus() {
    for (name, mode, ops) in call_seeds() {
        let dir = corpus("call_object");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), decode::encode_call_ops(mode, &ops).unwrap()).unwrap();
    }
    let dir = corpus("aggregation");
    fs::create_dir_all(&dir).unwrap();
    for (name, mode, ops) in agg_seeds() {
        fs::write(dir.join(name), decode::encode_agg_ops(mode, &ops).unwrap()).unwrap();
    }
    let dir = corpus("server_host");
    fs::create_dir_all(&dir).unwrap();
    for (name, mode, abandon, ops) in host_seeds() {
        let bytes = decode::encode_host_ops(mode, abandon, &ops).unwrap();
        fs::write(dir.join(name), bytes).unwrap();
    }
    for (target, profile) in [
        ("events", WorldProfile::Events),
        ("co_wait", WorldProfile::CoWait),
    ] {
        let dir = corpus(target);
        fs::create_dir_all(&dir).unwrap();
        for (name, kinds, ops) in world_seeds(profile) {
            let bytes = decode::encode_world_ops(profile, &kinds, &ops).unwrap();
            fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

/// Found by the `aggregation` target (fixed on main in 89f5b78): a `Begin_` refused because
/// the aggregating outer's `Reset` fails cleared the previous call's cancelled flag, although
/// the flag is cleared only by the next *successful* `Begin_`.
#[test]
fn a_begin_refused_by_the_outers_reset_keeps_the_cancelled_flag() {
    use AggOp::*;
    let ops = [
        Begin(READ),
        Cancel(0),
        Finish(READ),
        OuterFails {
            reset: true,
            signal: false,
        },
        Begin(READ),
        TestCancel,
    ];
    if let Err(m) = check_aggregation(FinishMode::Strict, &ops) {
        panic!("\n{m}");
    }
}
