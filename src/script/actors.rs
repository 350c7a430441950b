//! Actor threads: every actor a script names is a thread of that name, fed jobs one at a
//! time through a channel and answering each with a [`Reply`].
//!
//! An actor's thread is also its COM thread: `CoInitializeEx` in a job puts it in an
//! apartment for the jobs after it; each reply says which apartment the job ran in.
//!
//! Invariants: a job's panic is caught and reported as the step's error (the thread lives
//! on); after each reply the thread says so to `sync::observe`, so a runner waiting for
//! "returned or blocked" wakes without polling; dropping an [`Actor`] closes its channel,
//! and an idle actor's thread is joined.

use std::any::Any;
use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle, ThreadId};

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::exec::Job;
use crate::apartment::Apartment;

/// The apartment a thread was in when it looked.
#[derive(Clone)]
pub(super) struct AptSeen {
    /// The apartment (the runner reads an STA's dispatch count from it).
    pub(super) apt: Arc<Apartment>,
}

impl AptSeen {
    /// The current thread's apartment.
    fn now() -> Option<AptSeen> {
        crate::apartment::current().map(|apt| AptSeen { apt })
    }
}

/// A job's answer: the thread it ran on, its result (or its panic message), the thread's
/// COM thread id and its apartment before and after the job.
pub(super) struct Reply {
    pub(super) thread: String,
    pub(super) res: Result<Box<dyn Any + Send>, String>,
    /// `GetCurrentThreadId()` of the actor's thread (what `CoCancelCall` names).
    pub(super) tid: u32,
    /// The thread's apartment when the job started.
    pub(super) before: Option<AptSeen>,
    /// The thread's apartment when the job ended.
    pub(super) after: Option<AptSeen>,
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
                    let before = AptSeen::now();
                    let res =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).map_err(|p| {
                            p.downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| p.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "a panic".into())
                        });
                    let thread = thread::current().name().unwrap_or("?").to_string();
                    let reply = Reply {
                        thread,
                        res,
                        tid: crate::apartment::get_current_thread_id(),
                        before,
                        after: AptSeen::now(),
                    };
                    if reply_tx.send(reply).is_err() {
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
