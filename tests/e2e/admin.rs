//! The admin API of a running `weir`: `/ready` follows the pipeline, not
//! the process.

use std::process::Stdio;
use std::time::Duration;

use crate::util::{TestDir, free_port, http, sigterm, wait_for, weir};

fn config(admin: u16, http_port: u16) -> String {
    format!(
        "admin: {{ address: 127.0.0.1:{admin} }}
inputs:
  - {{ type: stdin }}
  - {{ type: http, address: 127.0.0.1:{http_port} }}
outputs:
  - {{ type: blackhole, match: '*' }}
"
    )
}

#[test]
fn ready_waits_until_every_input_listens() {
    let dir = TestDir::new();
    // The HTTP input cannot bind a port that is taken, so it never listens.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = free_port();
    let file = dir.write("weir.yaml", &config(admin, taken.local_addr().unwrap().port()));
    let mut child = weir().args(["run", "-c"]).arg(&file).stdin(Stdio::piped()).spawn().unwrap();
    assert!(wait_for(Duration::from_secs(20), || http("GET", admin, "/health").is_some_and(|(s, _)| s == 200)));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        http("GET", admin, "/ready").unwrap().0,
        503,
        "an input that does not listen keeps the pipeline not ready"
    );
    sigterm(child.id());
    child.wait().unwrap();

    let admin = free_port();
    let file = dir.write("weir.yaml", &config(admin, free_port()));
    let mut child = weir().args(["run", "-c"]).arg(&file).stdin(Stdio::piped()).spawn().unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || http("GET", admin, "/ready").is_some_and(|(s, _)| s == 200)),
        "ready once both inputs listen"
    );
    sigterm(child.id());
    assert!(child.wait().unwrap().success());
}
