//! The ring buffer under two threads: a producer and a consumer move millions of stereo frames
//! in random chunk sizes, and every frame arrives once, in order, intact. Both threads run
//! their loops inside `assert_no_alloc` (this binary's global allocator aborts on any
//! allocation there; `the_checker_is_armed` proves it would).

use std::time::{Duration, Instant};

use assert_no_alloc::{AllocDisabler, assert_no_alloc};
use rtfx::realtime::ring_buffer;

#[global_allocator]
static ALLOCATOR: AllocDisabler = AllocDisabler;

/// Frames moved in the stress test.
const TOTAL: u64 = 8_000_000;

/// The value of frame `k` on channel `c`: exact in f32 and different per channel.
fn value(k: u64, c: usize) -> f32 {
    let base = (k % 8_000_000) as f32;
    if c == 0 { base } else { -base - 0.5 }
}

/// xorshift64: chunk sizes without allocating.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn two_threads_move_millions_of_frames_in_order() {
    let (mut tx, mut rx) = ring_buffer(1000, 2).unwrap();
    assert_eq!(tx.capacity(), 1024);
    let deadline = Instant::now() + Duration::from_secs(60);
    let producer = std::thread::spawn(move || {
        let mut left = vec![0.0f32; 1500];
        let mut right = vec![0.0f32; 1500];
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut written = 0u64;
        let mut partial_writes = 0u64;
        assert_no_alloc(|| {
            while written < TOTAL {
                let n = (1 + next(&mut seed) % 1500).min(TOTAL - written) as usize;
                for i in 0..n {
                    left[i] = value(written + i as u64, 0);
                    right[i] = value(written + i as u64, 1);
                }
                // Offer the chunk; keep what did not fit for the next round (partial writes).
                let got = tx.write_frames(&[&left[..n], &right[..n]], 0, n);
                if got < n && got > 0 {
                    partial_writes += 1;
                }
                written += got as u64;
                if got == 0 {
                    if Instant::now() > deadline {
                        break;
                    }
                    std::thread::yield_now();
                }
            }
        });
        (written, partial_writes)
    });
    let mut left = vec![0.0f32; 1200];
    let mut right = vec![0.0f32; 1200];
    let mut seed = 0x0fed_cba9_8765_4321u64;
    let mut read = 0u64;
    let mut errors = 0u64;
    assert_no_alloc(|| {
        while read < TOTAL && Instant::now() < deadline {
            let n = (1 + next(&mut seed) % 1200) as usize;
            let got = rx.read_frames(&mut [&mut left[..], &mut right[..]], 0, n);
            for i in 0..got {
                let k = read + i as u64;
                if left[i] != value(k, 0) || right[i] != value(k, 1) {
                    errors += 1;
                }
            }
            read += got as u64;
            if got == 0 {
                std::thread::yield_now();
            }
        }
    });
    let (written, partial_writes) = producer.join().unwrap();
    assert_eq!(written, TOTAL, "the producer finished before the deadline");
    assert_eq!(read, TOTAL, "every frame arrived");
    assert_eq!(errors, 0, "frames arrived intact and in order");
    assert!(partial_writes > 0, "the test exercised partial writes");
    assert_eq!(rx.available_read(), 0);
}

#[test]
fn read_peek_write_and_clear_do_not_allocate() {
    let (mut tx, mut rx) = ring_buffer(256, 2).unwrap();
    let a = vec![0.25f32; 200];
    let b = vec![-0.25f32; 200];
    let mut l = vec![0.0f32; 100];
    let mut r = vec![0.0f32; 100];
    assert_no_alloc(|| {
        for _ in 0..1000 {
            assert_eq!(tx.write(&[&a, &b]).unwrap(), 200);
            rx.peek(&mut [&mut l, &mut r]).unwrap();
            rx.read(&mut [&mut l, &mut r]).unwrap();
            rx.advance_read(50).unwrap();
            assert_eq!(tx.write_silence(10), 10);
            rx.clear();
            assert_eq!(rx.discard(5), 0);
        }
    });
    assert_eq!((l[0], r[99]), (0.25, -0.25));
}

#[test]
fn halves_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let (tx, rx) = ring_buffer(8, 1).unwrap();
    assert_send(&tx);
    assert_send(&rx);
}

/// The allocator is armed: an allocation inside `assert_no_alloc` aborts a child process.
#[test]
fn the_checker_is_armed() {
    if std::env::var_os("RTFX_RING_ALLOC_CHILD").is_some() {
        assert_no_alloc(|| {
            let v = std::hint::black_box(vec![0u8; 64]);
            drop(v);
        });
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "the_checker_is_armed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RTFX_RING_ALLOC_CHILD", "1")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the child allocated inside assert_no_alloc and survived"
    );
}
