//! `split` on the real binary: every statement keeps its own event time.
//! Year-less (syslog) and date-less time formats are completed from the
//! host clock, formats that can name no instant are refused by `weir
//! validate`, and stack traces stay with the statement they belong to.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::util::{TestDir, read_ndjson, run};

/// chunks on stdin -> split (time read by `regex` in `format`) -> envelopes.
fn split_config(regex: &str, format: &str) -> String {
    format!(
        r#"
inputs:
  - {{ type: file, path: in.ndjson, tag: chunks }}
filters:
  - type: split
    match: chunks
    config:
      context: [app]
      time: {{ regex: '{regex}', format: '{format}' }}
      tag: statements
outputs:
  - {{ type: file, match: statements, encoding: envelope, path: out.ndjson }}
  - {{ type: file, name: dead_letter, match: weir.dead_letter, path: dead.ndjson }}
"#
    )
}

fn time_of(envelope: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(envelope["time"].as_str().unwrap()).unwrap().to_utc()
}

#[test]
fn syslog_times_without_a_year_keep_their_own_date_and_time() {
    let now = Utc::now();
    // A minute, three days and forty days ago: the last crosses New Year
    // when the suite runs in January.
    let times: Vec<DateTime<Utc>> = [1, 3 * 24 * 60, 40 * 24 * 60]
        .iter()
        .map(|minutes| {
            let t = now - Duration::minutes(*minutes);
            t - Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos()))
        })
        .collect();
    // `%e`: syslog pads the day with a space ("Nov  3").
    let logs: Vec<String> =
        times.iter().map(|t| format!("{} sshd[42]: accepted", t.format("%b %e %H:%M:%S"))).collect();
    let dir = TestDir::new();
    dir.write("in.ndjson", &(json!({"app": "host", "logs": logs}).to_string() + "\n"));
    let config = split_config(r"^(?P<time>[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2})", "%b %d %H:%M:%S");
    let file = dir.write("weir.yaml", &config);
    let validated = run(&["validate", "-c", file.to_str().unwrap()]);
    assert!(validated.status.success(), "{}", String::from_utf8_lossy(&validated.stderr));
    dir.run_config(&config);

    let out = read_ndjson(&dir.path("out.ndjson"));
    let got: Vec<DateTime<Utc>> = out.iter().map(time_of).collect();
    assert_eq!(got, times, "{out:?}");
    assert!(out.iter().all(|r| r["body"].get("time_missing").is_none()), "{out:?}");
}

#[test]
fn times_without_a_date_take_the_nearest_day() {
    let now = Utc::now();
    let earlier = now - Duration::minutes(2);
    let earlier = earlier - Duration::nanoseconds(i64::from(earlier.timestamp_subsec_nanos()));
    let line = format!("[{}] INFO started", earlier.format("%H:%M:%S"));
    let dir = TestDir::new();
    dir.write("in.ndjson", &(json!({"app": "dev", "logs": [line]}).to_string() + "\n"));
    dir.run_config(&split_config(r"^\[(?P<time>[^\]]+)\]", "%H:%M:%S"));
    let out = read_ndjson(&dir.path("out.ndjson"));
    assert_eq!(time_of(&out[0]), earlier, "{out:?}");
}

#[test]
fn validate_refuses_time_formats_that_can_name_no_instant() {
    let cases = [
        ("%Y-%m-%d", "gives no time of day"),
        ("%d %H:%M:%S", "gives no full date"),
        ("%Y-%m-%d %H:%M:%S %Z", "%Z reads a zone name, which gives no offset"),
    ];
    for (format, why) in cases {
        let dir = TestDir::new();
        let file = dir.write("weir.yaml", &split_config(r"^(?P<time>\S+)", format));
        let out = run(&["validate", "-c", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{format}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("filters.split: plugin split: config field `time.format`: "), "{stderr}");
        assert!(stderr.contains(why), "{format}: {stderr}");
    }
}

const JAVA: &str = "2026-11-22T10:00:00.000Z txn=pay status=error resp_ms=2210 crash
java.lang.IllegalStateException: card token expired
\tat com.example.shop.pay.Checkout.submit(Checkout.java:88)
\tat com.example.shop.ui.PayFragment.onClick(PayFragment.java:41)";

const PYTHON: &str = "2026-11-22T10:00:01.000Z ERROR sync failed
Traceback (most recent call last):
  File \"/app/sync.py\", line 12, in push
ConnectionError: timed out";

const GO: &str = "2026-11-22T10:00:02.000Z panic: runtime error: index out of range [3] with length 3

goroutine 1 [running]:
main.checkout(...)
\t/app/main.go:8 +0x1d";

#[test]
fn stack_traces_stay_one_statement_with_the_statements_own_time() {
    let text = format!(
        "\tat com.example.Tail.run(Tail.java:7)\n{JAVA}\n{PYTHON}\n{GO}\n2026-11-22T10:00:03.000Z page=home load=900ms\n"
    );
    let array: Vec<&str> = JAVA.lines().chain(["2026-11-22T10:00:04.000Z page=cart load=700ms"]).collect();
    let dir = TestDir::new();
    dir.write(
        "in.ndjson",
        &format!("{}\n{}\n", json!({"app": "shop", "logs": text}), json!({"app": "shop", "logs": array})),
    );
    dir.run_config(&split_config(r"^(?P<time>\S+)", "rfc3339"));

    let out = read_ndjson(&dir.path("out.ndjson"));
    let messages: Vec<&str> = out.iter().map(|r| r["body"]["message"].as_str().unwrap()).collect();
    assert_eq!(
        messages,
        [
            // The chunk began inside a trace: its tail is a statement of its own.
            "\tat com.example.Tail.run(Tail.java:7)",
            JAVA,
            PYTHON,
            GO,
            "2026-11-22T10:00:03.000Z page=home load=900ms",
            JAVA,
            "2026-11-22T10:00:04.000Z page=cart load=700ms",
        ]
    );
    let seconds: Vec<String> =
        out[1..].iter().map(|r| time_of(r).to_rfc3339_opts(SecondsFormat::Secs, true)[17..19].to_owned()).collect();
    assert_eq!(seconds, ["00", "01", "02", "03", "00", "04"]);
    // Only the orphaned tail has no time of its own.
    let missing: Vec<bool> = out.iter().map(|r| r["body"].get("time_missing").is_some()).collect();
    assert_eq!(missing, [true, false, false, false, false, false, false]);
    assert!(read_ndjson(&dir.path("dead.ndjson")).is_empty());
}
