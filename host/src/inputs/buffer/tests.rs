use super::*;

fn settings(dir: &Path, max_bytes: u64) -> BufferSettings {
    BufferSettings {
        dir: dir.to_path_buf(),
        max_bytes: ByteSize(max_bytes),
        fsync: Fsync::Always,
        fsync_interval: default_fsync_interval(),
    }
}

fn unit(n: u64) -> Vec<Record> {
    vec![Record {
        time: n as i64,
        tag: "t".into(),
        body: format!("{{\"n\":{n}}}").into_bytes().into(),
        origin: Some(Origin { stream: "http:x".into(), offset: n, lineage: 7 }),
        ack: None,
        arrival: None,
    }]
}

/// Everything the feeder would send now, as (id, body).
fn drain(buffer: &Buffer) -> Vec<(u64, String)> {
    let mut reader = Reader { segment: 0, offset: 0, file: None, last_read: None };
    let mut out = Vec::new();
    while let Some((id, records)) = reader.next(buffer).unwrap() {
        out.push((id, String::from_utf8(records[0].body.to_vec()).unwrap()));
    }
    out
}

fn bodies(units: &[(u64, String)]) -> Vec<&str> {
    units.iter().map(|(_, b)| b.as_str()).collect()
}

fn segments(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "wal"))
        .count()
}

/// A kill -9: the log is never closed, its lock released as the process
/// would release it.
fn crash(buffer: Buffer) {
    let inner = Arc::into_inner(buffer.0).expect("the only handle").inner.into_inner().unwrap();
    let lock = inner._lock.try_clone().unwrap();
    std::mem::forget(inner);
    lock.unlock().unwrap();
}

#[test]
fn units_come_back_in_order_with_their_identity() {
    let dir = tempfile::tempdir().unwrap();
    let (buffer, _) = Buffer::open("in", &settings(dir.path(), 1 << 20)).unwrap();
    for n in 0..3 {
        buffer.append(&unit(n)).unwrap();
    }
    let mut reader = Reader { segment: 0, offset: 0, file: None, last_read: None };
    let (_, records) = reader.next(&buffer).unwrap().unwrap();
    let original = &unit(0)[0];
    assert_eq!(records[0].identity(), original.identity(), "origin, tag, time and body survive the disk");
    assert_eq!(bodies(&drain(&buffer)), ["{\"n\":0}", "{\"n\":1}", "{\"n\":2}"]);
    assert!(reader.next(&buffer).unwrap().is_some(), "a reader carries on where it was");
}

#[test]
fn after_a_crash_everything_not_recorded_as_acknowledged_is_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let (buffer, _) = Buffer::open("in", &settings(dir.path(), 1 << 20)).unwrap();
    let ids: Vec<u64> = (0..4).map(|n| buffer.append(&unit(n)).unwrap()).collect();
    buffer.ack(ids[0]);
    buffer.sync().unwrap(); // records "0 is done"
    buffer.ack(ids[1]); // not recorded before the crash
    crash(buffer);
    let (buffer, recovery) = Buffer::open("in", &settings(dir.path(), 1 << 20)).unwrap();
    assert_eq!(recovery.replayed, 3);
    assert_eq!(bodies(&drain(&buffer)), ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"], "at-least-once: 1 again, 0 not");
}

#[test]
fn a_clean_close_sends_again_only_what_is_owed_and_ids_keep_growing() {
    let dir = tempfile::tempdir().unwrap();
    let (buffer, _) = Buffer::open("in", &settings(dir.path(), 1 << 20)).unwrap();
    let ids: Vec<u64> = (0..4).map(|n| buffer.append(&unit(n)).unwrap()).collect();
    for i in [0, 1, 3] {
        buffer.ack(ids[i]);
    }
    drop(buffer);
    let (buffer, recovery) = Buffer::open("in", &settings(dir.path(), 1 << 20)).unwrap();
    assert_eq!(recovery.replayed, 2, "from the lowest unacknowledged id on");
    assert_eq!(bodies(&drain(&buffer)), ["{\"n\":2}", "{\"n\":3}"]);
    assert!(buffer.append(&unit(9)).unwrap() > ids[3]);
}

#[test]
fn a_second_process_cannot_use_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (_held, _) = Buffer::open("in", &settings(dir.path(), 1 << 20)).unwrap();
    // What another process meets: its own open of the lock file.
    let err = Buffer::open_with("other", &settings(dir.path(), 1 << 20), 1 << 20).err().expect("refused");
    assert!(matches!(err, BufferError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("in use by another process"), "{err}");
}

#[test]
fn acknowledged_segments_are_deleted_and_their_bytes_freed() {
    let dir = tempfile::tempdir().unwrap();
    let (buffer, _) = Buffer::open_with("in", &settings(dir.path(), 1 << 20), 64).unwrap();
    let ids: Vec<u64> = (0..10).map(|n| buffer.append(&unit(n)).unwrap()).collect();
    assert!(segments(dir.path()) > 3, "small segments rotate");
    drain(&buffer);
    for id in ids {
        buffer.ack(id);
    }
    assert_eq!(segments(dir.path()), 1, "only the segment being appended to is left");
    let inner = buffer.lock();
    assert_eq!(inner.total_bytes(), inner.active_bytes(), "only its bytes count");
}

/// A log with units 0, 1 and 2 in one segment, left by a kill -9: its
/// folder and that segment.
fn three_units_then_crash() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (buffer, _) = Buffer::open("in", &settings(dir.path(), 1 << 20)).unwrap();
    for n in 0..3 {
        buffer.append(&unit(n)).unwrap();
    }
    let path = buffer.lock().active_segment().path.clone();
    crash(buffer);
    (dir, path)
}

#[test]
fn a_torn_tail_is_truncated_and_counted_and_the_rest_sent() {
    let (dir, path) = three_units_then_crash();
    let len = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 5).unwrap();
    let (buffer, recovery) = Buffer::open("in", &settings(dir.path(), 1 << 20)).unwrap();
    assert_eq!((recovery.torn, recovery.corrupt), (1, 0));
    assert_eq!(bodies(&drain(&buffer)), ["{\"n\":0}", "{\"n\":1}"]);
    assert!(std::fs::metadata(&path).unwrap().len() < len - 5, "the torn frame is cut off the file");
}

#[test]
fn a_corrupt_frame_ends_its_segment_without_a_crash() {
    let (dir, path) = three_units_then_crash();
    let mut bytes = std::fs::read(&path).unwrap();
    let first = bytes.len() / 3;
    bytes[first + HEADER + 2] ^= 0xff; // inside the second frame's payload
    std::fs::write(&path, &bytes).unwrap();
    let (buffer, recovery) = Buffer::open("in", &settings(dir.path(), 1 << 20)).unwrap();
    assert_eq!((recovery.torn, recovery.corrupt), (0, 1));
    assert_eq!(bodies(&drain(&buffer)), ["{\"n\":0}"], "what precedes the damage is kept");
    let id = buffer.append(&unit(5)).unwrap();
    assert_eq!(drain(&buffer).last().unwrap().0, id, "and the log goes on");
}

#[test]
fn garbage_in_the_folder_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("00000000000000000000.wal"), [0xffu8; 40]).unwrap();
    std::fs::write(dir.path().join("00000000000000000100.wal"), b"").unwrap();
    std::fs::write(dir.path().join("committed"), "not a number").unwrap();
    let (buffer, recovery) = Buffer::open("in", &settings(dir.path(), 1 << 20)).unwrap();
    assert_eq!(recovery.replayed, 0);
    assert!(drain(&buffer).is_empty());
}

#[test]
fn past_max_bytes_appends_are_refused_until_acknowledgements_free_room() {
    let dir = tempfile::tempdir().unwrap();
    let frame = encode(&unit(0)).len() as u64;
    let (buffer, _) = Buffer::open_with("in", &settings(dir.path(), frame * 3), frame * 2).unwrap();
    let ids: Vec<u64> = (0..3).map(|n| buffer.append(&unit(n)).unwrap()).collect();
    assert!(matches!(buffer.append(&unit(3)), Err(BufferError::Full { .. })));
    drain(&buffer);
    buffer.ack(ids[0]);
    buffer.ack(ids[1]);
    assert!(buffer.append(&unit(3)).is_ok(), "a deleted segment frees room");
    let big = vec![unit(0)[0].clone(); 10];
    assert!(matches!(buffer.append(&big), Err(BufferError::TooLarge { .. })), "never fits: not a retry");
}

#[test]
fn the_fuzz_corpus_starts_from_whole_frames() {
    // Without a whole frame to mutate, the fuzzer would rarely get past the
    // checksum; the committed corpus keeps at least one segment that reads.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/host/corpus/buffer_segment");
    let whole = std::fs::read_dir(dir).unwrap().filter(|entry| {
        let data = std::fs::read(entry.as_ref().unwrap().path()).unwrap();
        matches!(read_frame(&mut std::io::Cursor::new(&data[..])), Ok(Some((_, _, Some(_)))))
    });
    assert!(whole.count() > 0);
    let two = [frame(&unit(0), 0), frame(&unit(1), 1)].concat();
    let mut reader = std::io::Cursor::new(&two[..]);
    let mut ids = Vec::new();
    while let Some((id, _, records)) = read_frame(&mut reader).unwrap() {
        assert!(records.is_some(), "frame {id} reads whole");
        ids.push(id);
    }
    assert_eq!(ids, [0, 1]);
}

#[test]
fn a_reloaded_input_gets_the_same_log_and_its_feeder_skips_what_is_on_its_way() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = Buffer::open("in", &settings(dir.path(), 1 << 20)).unwrap();
    let ids: Vec<u64> = (0..3).map(|n| first.append(&unit(n)).unwrap()).collect();
    first.lock().sent.insert(ids[0]); // the old feeder sent 0, not yet delivered
    first.ack(ids[1]); // and 1 was delivered
    let (second, recovery) =
        Buffer::open("in", &settings(dir.path(), 4 << 20)).expect("not refused as a second process");
    assert!(Arc::ptr_eq(&first.0, &second.0), "one log per folder in a process");
    assert_eq!(recovery, Recovery::default());
    assert_eq!(bodies(&drain(&second)), ["{\"n\":2}"], "a new feeder sends only what no one has");
}

#[test]
fn a_full_log_of_delivered_units_makes_room_for_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<Record> = (0..40).flat_map(unit).collect();
    let size = encode(&big).len() as u64;
    let (buffer, _) = Buffer::open_with("in", &settings(dir.path(), size * 3 / 2), size * 4).unwrap();
    let id = buffer.append(&big).unwrap();
    drain(&buffer);
    buffer.ack(id);
    assert!(buffer.append(&big).is_ok(), "the delivered segment goes instead of a 429 forever");
}

#[test]
fn a_segment_whose_name_says_more_than_its_frames_is_appended_after() {
    let (dir, path) = three_units_then_crash();
    std::fs::rename(&path, dir.path().join("00000000000000000007.wal")).unwrap();
    let (buffer, recovery) = Buffer::open_with("in", &settings(dir.path(), 1 << 20), 1 << 20).unwrap();
    assert_eq!(recovery.replayed, 3);
    let id = buffer.append(&unit(9)).unwrap();
    assert!(id > 7, "a new unit gets an id past every segment's name: {id}");
    let sent = drain(&buffer);
    assert_eq!(sent.last().unwrap(), &(id, "{\"n\":9}".to_string()), "and it is read back, not lost");
}
