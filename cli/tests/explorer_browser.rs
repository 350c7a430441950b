//! `comasync explore` in a real browser: Debian's Chromium, headless, driven through
//! chromedriver with fantoccini. The test clicks through the seed's procedure in the written
//! order and checks after each click the call object's state (text and the lit node of the
//! state machine), the HRESULTs with name, value and message, the sequence diagram's
//! messages, step back, and a jump to another order's result; it saves a screenshot to
//! docs/explorer.png.
//!
//! Without chromium or chromedriver the test is skipped with a message — unless `CI` is set,
//! where their absence is a failure (`.ci/run` installs them).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|n| {
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .find(|p| p.is_file())
    })
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Starts `comasync explore --port 0` on the seed's procedure; returns it and its URL.
fn explorer() -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_comasync"))
        .args(["explore", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (Killed(child), url)
}

async fn connect(chromium: &PathBuf, port: u16) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1500,1100"],
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let mut last = None;
    // chromedriver needs a moment to listen: a bounded number of attempts.
    for _ in 0..50 {
        let builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await;
        match builder {
            Ok(c) => return c,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("could not start a chromium session: {last:?}");
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Clicks `css` and waits until the history has `steps` entries (the page has fetched the
/// new view).
async fn click(c: &Client, css: &str, steps: usize) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let xpath = format!("//ol[@id='history' and count(li)={steps}]");
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("after clicking {css}, {steps} steps: {e}"));
}

async fn diagram_messages(c: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for e in c.find_all(Locator::Css("#diagram text.msg")).await.unwrap() {
        out.push(e.text().await.unwrap());
    }
    out
}

async fn lit(c: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for e in c.find_all(Locator::Css("#machine g.lit")).await.unwrap() {
        out.push(e.attr("id").await.unwrap().unwrap_or_default());
    }
    out
}

#[test]
fn the_seed_procedure_by_clicking_in_chromium() {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    let chromium = on_path(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = on_path(&["chromedriver"]);
    let (Some(chromium), Some(driver)) = (chromium, driver) else {
        assert!(
            !ci,
            "CI is set but chromium or chromedriver is missing: install the Debian packages \
             `chromium` and `chromium-driver` (.ci/run does)"
        );
        eprintln!(
            "SKIPPED the browser test: chromium or chromedriver not found on PATH \
             (apt-get install chromium chromium-driver); CI is not set"
        );
        return;
    };
    let (_explorer, url) = explorer();
    let port = free_port();
    let _driver = Killed(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = connect(&chromium, port).await;
        c.goto(&url).await.unwrap();
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("#next-r0"))
            .await
            .unwrap();
        assert_eq!(text(&c, "#call-state").await, "(no call object yet)");
        // The tour is on the page too (folded).
        c.find(Locator::Css("#tour summary")).await.unwrap().click().await.unwrap();
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath("//pre[@id='tour-text'][contains(., 'CreateCall')]"))
            .await
            .unwrap();
        c.find(Locator::Css("#tour summary")).await.unwrap().click().await.unwrap();
        // The written order: line, the state after it, the HRESULT shown.
        let steps: [(&str, &str, &str); 12] = [
            ("#next-r0", "(no call object yet)", "done"),
            ("#next-r0", "(no call object yet)", "S_OK"),
            ("#next-r0", "call: Idle", "S_OK"),
            ("#next-r0", "call: Idle", "1"),
            ("#next-r0", "call: Pending", "S_OK 0x00000000"),
            ("#next-r0", "call: Pending", "RPC_S_CALLPENDING 0x80010115"),
            ("#next-r0", "call: Pending", "RPC_S_CALLPENDING 0x80010115"),
            ("#next-r1", "call: Signaled { cancelled: false }", "S_OK"),
            ("#next-r0", "call: Signaled { cancelled: false }", "S_OK 0x00000000"),
            ("#next-r0", "call: Idle", "S_OK \"hello\" 0x00000000"),
            ("#next-r0", "call: Idle", "RPC_E_CALL_COMPLETE 0x80010117"),
            ("#next-r0", "call: Gone", "0"),
        ];
        for (i, (button, state, hr)) in steps.iter().enumerate() {
            click(&c, button, i + 1).await;
            assert_eq!(text(&c, "#call-state").await, *state, "after click {}", i + 1);
            let last = text(&c, "#history li:last-child").await;
            assert!(last.contains(hr), "after click {}: {last:?} lacks {hr:?}", i + 1);
        }
        // The HRESULT's message is shown with its name and value.
        let history = text(&c, "#history").await;
        assert!(history.contains("RPC_S_CALLPENDING 0x80010115"), "{history}");
        assert!(history.contains("RPC_E_CALL_COMPLETE 0x80010117"), "{history}");
        let message = text(&c, "#history li:nth-child(6) .msg").await;
        assert!(!message.is_empty(), "no message for RPC_S_CALLPENDING");
        // The state machine shows the current state lit.
        assert_eq!(lit(&c).await, ["state-Gone"]);
        // The diagram's messages: the calls and their answers.
        let msgs = diagram_messages(&c).await;
        for m in ["Begin_Read call 5", "Complete call", "Finish_Read call", "Release call"] {
            assert!(msgs.iter().any(|x| x == m), "{m} not in {msgs:?}");
        }
        assert!(msgs.iter().any(|x| x == "RPC_S_CALLPENDING"), "{msgs:?}");
        assert!(text(&c, "#status").await.contains("finished"));
        c.screenshot()
            .await
            .map(|png| {
                let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/explorer.png");
                std::fs::write(path, png).unwrap();
            })
            .unwrap();
        // Step back: the Release undone.
        click(&c, "#back", 11).await;
        assert_eq!(text(&c, "#call-state").await, "call: Idle");
        assert_eq!(lit(&c).await, ["state-Idle"]);
        click(&c, "#back", 10).await;
        click(&c, "#back", 9).await;
        assert_eq!(
            text(&c, "#call-state").await,
            "call: Signaled { cancelled: false }"
        );
        // Another order: the Wait call 0 of line 9 returns S_OK if the server completes first.
        let others = text(&c, "#others").await;
        assert!(others.contains("line 9 Wait call 0 → S_OK"), "{others}");
        let jump = c
            .find(Locator::XPath(
                "//ul[@id='others']/li[contains(., 'line 9 Wait call 0')]/button",
            ))
            .await
            .unwrap();
        jump.click().await.unwrap();
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath(
                "//ol[@id='history']/li[last()][contains(., 'Wait call 0') and contains(., 'S_OK')]",
            ))
            .await
            .unwrap();
        c.close().await.unwrap();
    });
}
