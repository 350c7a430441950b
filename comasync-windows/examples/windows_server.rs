//! A windows-rs server served by comasync's call machinery: a plain `#[implement]` object with
//! synchronous methods, whose calls a client makes asynchronously through
//! [`comasync_windows::CallFactory`] — the part COM's proxy and MIDL's call objects play on
//! Windows. The method runs on comasync's pool and sees the client's `Cancel` through
//! `CoGetCallContext`. Run it with `cargo run -p comasync-windows --example windows_server`.

#![allow(non_snake_case)]

use std::process::ExitCode;

use comasync::sync::HANDLE as Event;
use comasync_windows::{call_object_faces, AsyncCall, CallFactory};
use windows::core::{
    implement, interface, ComObject, IUnknown, IUnknown_Vtbl, Interface, Result, HRESULT,
};
use windows::Win32::Foundation::{RPC_E_CALL_CANCELED, RPC_S_CALLPENDING, S_OK};
use windows::Win32::System::Com::{
    CoGetCallContext, ICancelMethodCalls, ISynchronize, ISynchronizeHandle,
};

/// `IDownloader`: a slow synchronous method.
#[interface("5A0C3E20-6B7D-4C8E-9F01-2B3C4D5E6F70")]
unsafe trait IDownloader: IUnknown {
    /// `Download(&bytes)`: waits until released, then reports how far it got.
    pub fn Download(&self, bytes: *mut u32) -> HRESULT;
}

/// `AsyncIDownloader`.
#[interface("5A0C3E21-6B7D-4C8E-9F01-2B3C4D5E6F70")]
unsafe trait AsyncIDownloader: IUnknown {
    pub fn Begin_Download(&self) -> HRESULT;
    pub fn Finish_Download(&self, bytes: *mut u32) -> HRESULT;
}

/// The server: synchronous, free-threaded (`Send + Sync`), unaware of asynchronous calls.
#[implement(IDownloader)]
struct Downloader {
    started: Event,
    release: Event,
}

impl IDownloader_Impl for Downloader_Impl {
    unsafe fn Download(&self, bytes: *mut u32) -> HRESULT {
        self.started.set_event();
        let mut i = 0;
        let _ = comasync::sync::co_wait_for_multiple_handles(
            0,
            u32::MAX,
            Some(std::slice::from_ref(&self.release)),
            Some(&mut i),
        );
        // The call context: has the client cancelled?
        let cancelled = unsafe { CoGetCallContext::<ICancelMethodCalls>() }
            .and_then(|c| unsafe { c.TestCancel() })
            .err()
            .map(|e| e.code());
        unsafe {
            *bytes = if cancelled == Some(RPC_E_CALL_CANCELED) {
                0
            } else {
                4096
            }
        };
        S_OK
    }
}

/// The call object: what MIDL generates on Windows, one line per method.
#[implement(AsyncIDownloader, ISynchronize, ISynchronizeHandle, ICancelMethodCalls)]
struct DownloaderCall {
    call: AsyncCall,
}
call_object_faces!(DownloaderCall_Impl, call);

impl AsyncIDownloader_Impl for DownloaderCall_Impl {
    unsafe fn Begin_Download(&self) -> HRESULT {
        self.call.begin(|server: &IDownloader| {
            let mut bytes = 0;
            (unsafe { server.Download(&mut bytes) }, bytes)
        })
    }
    unsafe fn Finish_Download(&self, bytes: *mut u32) -> HRESULT {
        self.call.finish(|b: u32| unsafe { *bytes = b })
    }
}

fn run() -> Result<()> {
    let server = ComObject::new(Downloader {
        started: Event::create_event(true, false),
        release: Event::create_event(true, false),
    });
    let factory = CallFactory::create::<IDownloader, _>(&server, AsyncIDownloader::IID, |call| {
        DownloaderCall { call }.into()
    });
    // The client: plain windows-rs.
    let call: AsyncIDownloader =
        unsafe { factory.CreateCall(&AsyncIDownloader::IID, None, &IUnknown::IID)? }.cast()?;
    let cancel: ICancelMethodCalls = call.cast()?;
    unsafe {
        call.Begin_Download().ok()?;
        assert_eq!(
            cancel.TestCancel().err().map(|e| e.code()),
            Some(RPC_S_CALLPENDING)
        );
        let mut i = 0;
        let _ = comasync::sync::co_wait_for_multiple_handles(
            0,
            u32::MAX,
            Some(std::slice::from_ref(&server.started)),
            Some(&mut i),
        );
        cancel.Cancel(0)?; // completes the call locally at once
        let mut bytes = 1;
        assert_eq!(call.Finish_Download(&mut bytes), RPC_E_CALL_CANCELED);
        server.release.set_event(); // the server's method sees the cancellation and returns
                                    // The same call object, again, uncancelled.
        call.Begin_Download().ok()?;
        call.cast::<ISynchronize>()?.Wait(0, u32::MAX)?;
        call.Finish_Download(&mut bytes).ok()?;
        assert_eq!(bytes, 4096);
    }
    println!("server passed");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("failed: {e}");
            ExitCode::FAILURE
        }
    }
}
