//! An Xvfb server and screenshots for the editor tests (Linux).
//!
//! Needs `Xvfb`, `xwd` (x11-apps) and `xwininfo` (x11-utils); `tools/setup.sh` installs them.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An Xvfb server, killed on drop.
pub struct Xvfb {
    child: Child,
    pub display: String,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SIGTERM lets Xvfb remove its lock file and socket; SIGKILL only if it hangs.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_xvfb() -> Xvfb {
    let base = 50 + std::process::id() % 400;
    for n in base..base + 50 {
        if Path::new(&format!("/tmp/.X{n}-lock")).exists() {
            continue;
        }
        let display = format!(":{n}");
        let child = Command::new("Xvfb")
            .args([
                &display,
                "-screen",
                "0",
                "1280x800x24",
                "-dpi",
                "96",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb runs (install the xvfb package, or set RTFX_SKIP_GUI_TESTS=1)");
        let mut server = Xvfb { child, display };
        let socket = format!("/tmp/.X11-unix/X{n}");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if Path::new(&socket).exists() {
                return server;
            }
            if let Ok(Some(_)) = server.child.try_wait() {
                break; // lost a race for this display number
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(server);
    }
    panic!("could not start Xvfb");
}

pub fn root_window(display: &str) -> u64 {
    let out = Command::new("xwininfo")
        .args(["-root", "-display", display])
        .output()
        .expect("xwininfo runs (x11-utils)");
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text
        .split("Window id: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no window id in: {text}"));
    u64::from_str_radix(id.trim_start_matches("0x"), 16).expect("hex window id")
}

/// What a screenshot shows.
pub struct Screenshot {
    /// Distinct colours.
    pub colours: usize,
    /// Share of pixels that are not black (the empty screen is black).
    pub lit: f64,
    /// Width and height of the box from the top-left corner that holds every lit pixel.
    pub lit_size: (usize, usize),
}

impl Screenshot {
    /// Whether something was drawn: many colours, and more than 1 % of the screen lit.
    pub fn drawn(&self) -> bool {
        self.colours >= 100 && self.lit > 0.01
    }
}

/// Saves a screenshot of the whole screen (xwd format) and says what it shows.
pub fn screenshot(display: &str, path: &Path) -> Screenshot {
    let status = Command::new("xwd")
        .args(["-root", "-silent", "-display", display, "-out"])
        .arg(path)
        .status()
        .expect("xwd runs (x11-apps)");
    assert!(status.success());
    let data = std::fs::read(path).expect("screenshot");
    let word = |i: usize| {
        u32::from_be_bytes([
            data[4 * i],
            data[4 * i + 1],
            data[4 * i + 2],
            data[4 * i + 3],
        ]) as usize
    };
    let (header, width, height, bits_per_pixel, bytes_per_line, ncolors) =
        (word(0), word(4), word(5), word(11), word(12), word(19));
    // Xvfb's 24-bit screens come as 3-byte pixels in lines padded to more than 3 × width bytes
    // (taking the stride from the line length, as this did before, read the image 4/3 wide).
    let stride = bits_per_pixel / 8;
    assert!(
        stride >= 3 && stride * width <= bytes_per_line,
        "unexpected screenshot format ({bits_per_pixel} bits per pixel)"
    );
    let pixels = &data[header + ncolors * 12..];
    let mut colours = std::collections::HashSet::new();
    let mut lit = 0usize;
    let mut total = 0usize;
    let mut lit_size = (0, 0);
    for (y, row) in pixels.chunks(bytes_per_line).take(height).enumerate() {
        for (x, px) in row.chunks_exact(stride).take(width).enumerate() {
            let v = u32::from_le_bytes([px[0], px[1], px[2], 0]);
            colours.insert(v);
            if v != 0 {
                lit += 1;
                lit_size = (lit_size.0.max(x + 1), lit_size.1.max(y + 1));
            }
            total += 1;
        }
    }
    Screenshot {
        colours: colours.len(),
        lit: lit as f64 / total.max(1) as f64,
        lit_size,
    }
}

/// Takes screenshots until the editor has drawn something, calling `pump` (the host's event
/// loop) for about half a second between them; software OpenGL on a loaded machine can take a
/// while for the first frame, so this waits up to 15 s. Panics when nothing was drawn.
pub fn wait_until_drawn(display: &str, path: &Path, mut pump: impl FnMut()) -> Screenshot {
    let start = Instant::now();
    loop {
        pump();
        let shot = screenshot(display, path);
        if shot.drawn() || start.elapsed() > Duration::from_secs(15) {
            eprintln!(
                "editor screenshot: {} ({} colours, {:.0} % lit, lit box {:?})",
                path.display(),
                shot.colours,
                shot.lit * 100.0,
                shot.lit_size
            );
            assert!(
                shot.drawn(),
                "the editor drew nothing ({} colours, {} lit)",
                shot.colours,
                shot.lit
            );
            return shot;
        }
    }
}

/// Asserts that the editor's frame fills its window (placed at the screen's top-left corner)
/// and draws nothing outside it: the lit box is the window's size, to 2 pixels.
pub fn assert_fills_window(shot: &Screenshot, window: (u32, u32)) {
    let (w, h) = (window.0 as usize, window.1 as usize);
    assert!(
        shot.lit_size.0.abs_diff(w) <= 2 && shot.lit_size.1.abs_diff(h) <= 2,
        "the editor's frame covers {:?} of its {w}x{h} window",
        shot.lit_size
    );
}

/// Asserts that nothing is on the screen yet (the check behind [`Screenshot::drawn`]).
pub fn assert_blank_screen(display: &str) {
    let path = std::env::temp_dir().join(format!("rtfx-blank-{}.xwd", std::process::id()));
    let blank = screenshot(display, &path);
    let _ = std::fs::remove_file(&path);
    assert!(
        blank.colours <= 2,
        "the empty screen is not blank ({} colours)",
        blank.colours
    );
}

/// The display for an editor test: a fresh Xvfb server with `DISPLAY` pointing at it, its
/// root window, and a check that its screen starts blank. `None` (with a note) when
/// `RTFX_SKIP_GUI_TESTS` is set.
///
/// Call it first in a test binary that has only this one test: it sets `DISPLAY`.
pub fn headless_display(test: &str) -> Option<(Xvfb, u64)> {
    if std::env::var_os("RTFX_SKIP_GUI_TESTS").is_some() {
        eprintln!("RTFX_SKIP_GUI_TESTS is set: skipping {test}");
        return None;
    }
    let xvfb = start_xvfb();
    // SAFETY: the caller's binary has this one test, so no other thread reads the environment.
    unsafe { std::env::set_var("DISPLAY", &xvfb.display) };
    let root = root_window(&xvfb.display);
    assert_blank_screen(&xvfb.display);
    Some((xvfb, root))
}

/// The pause between closing an editor and opening it again: `RTFX_GUI_REOPEN_MS`, 20 ms by
/// default (0 is the harshest).
pub fn reopen_pause() -> Duration {
    let ms = std::env::var("RTFX_GUI_REOPEN_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    Duration::from_millis(ms)
}
