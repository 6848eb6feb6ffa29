//! Tests of catching up: late reports, their withdrawal, drops, and full screens.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use super::*;

/// A socket whose other end nobody reads: a write bigger than its buffer never finishes.
fn stalled() -> (UnixStream, UnixStream) {
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    ours.set_nonblocking(true).expect("nonblocking");
    (ours, theirs)
}

const MORE_THAN_A_SOCKET_HOLDS: usize = 8 << 20;

/// A chunk the terminal does not take is reported late once, after the limit; dropping it
/// ends its write; chunks handed before the drop are dropped, later ones are not.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_late_chunk_is_reported_then_cut_short_when_dropped() {
    let (mut catch_up, mut dropping) = pair();
    let (ours, _theirs) = stalled();
    let first = catch_up.chunk(vec![b'x'; MORE_THAN_A_SOCKET_HOLDS], false);
    let second = catch_up.chunk(b"next".to_vec(), false);
    let writer = async {
        let mut room = WriteRoom::default();
        let cut = dropping.write(&mut room, ours.as_fd(), &first).await;
        (cut.is_none(), dropping.is_dropped(&second))
    };
    let looker = async {
        let start = Instant::now();
        catch_up.fell_behind().await;
        let waited = start.elapsed();
        assert!(catch_up.behind(false), "a newer chunk waits behind");
        assert!(catch_up.start(), "the first catch-up asks for a screen");
        assert!(!catch_up.start(), "one screen is asked for at a time");
        waited
    };
    let ((cut, second_dropped), waited) = tokio::join!(writer, looker);
    assert!(cut, "the write ends when its chunk is dropped");
    assert!(second_dropped, "everything handed before the drop goes");
    assert!(waited >= LAG_LIMIT, "reported late after {waited:?}");
    let third = catch_up.chunk(Vec::new(), false);
    assert!(!dropping.is_dropped(&third), "output after the drop stays");
    assert!(!catch_up.behind(true), "what was late is gone");
    assert!(
        catch_up.awaiting_fresh(),
        "output is dropped until the screen"
    );
    catch_up.fresh_arrived();
    assert!(!catch_up.awaiting_fresh());
}

/// A late chunk with nothing newer behind it is left to finish: dropping the newest output
/// there is would only fetch the same screen again.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_late_chunk_with_nothing_behind_it_is_left_to_finish() {
    let (mut catch_up, mut dropping) = pair();
    let (ours, _theirs) = stalled();
    let only = catch_up.chunk(vec![b'x'; MORE_THAN_A_SOCKET_HOLDS], false);
    let mut room = WriteRoom::default();
    let write = dropping.write(&mut room, ours.as_fd(), &only);
    tokio::pin!(write);
    tokio::select! {
        _ = &mut write => panic!("nobody reads: the write cannot finish"),
        () = catch_up.fell_behind() => {}
    }
    assert!(!catch_up.behind(false), "nothing newer: no catch-up");
    assert!(catch_up.behind(true), "output arriving now is newer");
}

/// A late chunk that is written after all takes its report back: output that arrives later
/// is no sign of lagging.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_late_chunk_written_after_all_takes_its_report_back() {
    let (mut catch_up, mut dropping) = pair();
    let (ours, theirs) = stalled();
    let late = catch_up.chunk(vec![b'x'; MORE_THAN_A_SOCKET_HOLDS], false);
    let mut room = WriteRoom::default();
    let write = dropping.write(&mut room, ours.as_fd(), &late);
    tokio::pin!(write);
    tokio::select! {
        _ = &mut write => panic!("nobody reads: the write cannot finish"),
        () = catch_up.fell_behind() => {}
    }
    // The terminal takes everything now.
    let reader = std::thread::spawn(move || {
        std::io::copy(&mut &theirs, &mut std::io::sink()).expect("read");
    });
    assert!(write.await.is_some_and(|r| r.is_ok()), "written whole");
    ours.shutdown(std::net::Shutdown::Write).expect("shutdown");
    reader.join().expect("reader");
    // The loop hears of it the next time it looks.
    let heard = tokio::time::timeout(Duration::from_secs(1), catch_up.fell_behind()).await;
    assert!(heard.is_err(), "a withdrawn report is no report");
    assert!(!catch_up.behind(true), "new output after it is not behind");
}

/// A full screen is never reported late, however long it takes.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_full_screen_is_never_reported_late() {
    let (mut catch_up, mut dropping) = pair();
    let (ours, _theirs) = stalled();
    let screen = catch_up.chunk(vec![b'x'; MORE_THAN_A_SOCKET_HOLDS], true);
    let mut room = WriteRoom::default();
    let write = dropping.write(&mut room, ours.as_fd(), &screen);
    let waited = tokio::time::timeout(LAG_LIMIT * 5, async {
        tokio::select! {
            _ = write => panic!("nobody reads: the write cannot finish"),
            () = catch_up.fell_behind() => {}
        }
    })
    .await;
    assert!(waited.is_err(), "a screen was reported late");
}
