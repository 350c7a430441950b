//! Actor threads: every actor a script names is a thread of that name, fed jobs one at a
//! time through a channel and answering each with a [`Reply`].
//!
//! Invariants: a job's panic is caught and reported as the step's error (the thread lives
//! on); after each reply the thread says so to `sync::observe`, so a runner waiting for
//! "returned or blocked" wakes without polling; dropping an [`Actor`] closes its channel,
//! and an idle actor's thread is joined.

use std::any::Any;
use std::io;
use std::thread::{self, JoinHandle, ThreadId};

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::exec::Job;

/// A job's answer: the thread it ran on and its result (or its panic message).
pub(super) struct Reply {
    pub(super) thread: String,
    pub(super) res: Result<Box<dyn Any + Send>, String>,
}

/// One actor thread.
pub(super) struct Actor {
    pub(super) jobs: Sender<Job>,
    pub(super) replies: Receiver<Reply>,
    thread: Option<JoinHandle<()>>,
    /// The thread's id, to ask `sync::observe` whether it is blocked.
    pub(super) thread_id: ThreadId,
    /// A job was sent and its reply not yet received.
    pub(super) busy: bool,
}

impl Actor {
    /// Starts the thread `name`.
    pub(super) fn spawn(name: &str) -> io::Result<Actor> {
        let (jobs, job_rx) = unbounded::<Job>();
        let (reply_tx, replies) = unbounded::<Reply>();
        let thread = thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                while let Ok(job) = job_rx.recv() {
                    let res =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).map_err(|p| {
                            p.downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| p.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "a panic".into())
                        });
                    let thread = thread::current().name().unwrap_or("?").to_string();
                    if reply_tx.send(Reply { thread, res }).is_err() {
                        break;
                    }
                    crate::sync::observe::changed();
                }
            })?;
        Ok(Actor {
            jobs,
            replies,
            thread_id: thread.thread().id(),
            thread: Some(thread),
            busy: false,
        })
    }

    /// Closes the channel; joins the thread unless it is still running a job (a blocked
    /// operation is left to end with the objects it waits on).
    pub(super) fn shut_down(self) {
        let Actor {
            jobs,
            replies,
            thread,
            busy,
            ..
        } = self;
        drop(jobs);
        drop(replies);
        if !busy {
            if let Some(t) = thread {
                let _ = t.join();
            }
        }
    }
}
