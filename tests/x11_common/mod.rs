//! An Xvfb server and screenshots for the editor tests (Linux).
//!
//! Needs `Xvfb`, `xwd` (x11-apps) and `xwininfo` (x11-utils); `tools/setup.sh` installs them.
#![allow(dead_code)]

pub mod clap_gui;

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
                "2560x1600x24",
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

/// The editor's window: the first window in `xwininfo -root -tree` of exactly `size`
/// (physical pixels), if there is one yet.
pub fn find_window(display: &str, size: (u32, u32)) -> Option<u64> {
    let out = Command::new("xwininfo")
        .args(["-root", "-tree", "-display", display])
        .output()
        .expect("xwininfo runs (x11-utils)");
    let wanted = format!("{}x{}+", size.0, size.1);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| {
            let line = line.trim_start();
            let id = line.strip_prefix("0x")?.split_whitespace().next()?;
            let geometry = line.rsplit("  ").nth(1)?.trim();
            geometry
                .starts_with(&wanted)
                .then(|| u64::from_str_radix(id, 16).ok())?
        })
}

/// What a screenshot shows.
pub struct Screenshot {
    /// Width and height of the image.
    pub size: (usize, usize),
    /// Distinct colours.
    pub colours: usize,
    /// Share of pixels that are not black (an empty screen or window is black).
    pub lit: f64,
    /// Width and height of the box from the top-left corner that holds every lit pixel.
    pub lit_size: (usize, usize),
    /// The pixels, row by row, as RGB.
    pub pixels: Vec<[u8; 3]>,
}

impl Screenshot {
    /// The pixel at `(x, y)` as RGB (black outside the image).
    pub fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        if x < self.size.0 && y < self.size.1 {
            self.pixels[y * self.size.0 + x]
        } else {
            [0; 3]
        }
    }

    /// Whether something was drawn: many colours, and more than 1 % of the image lit.
    pub fn drawn(&self) -> bool {
        self.colours >= 100 && self.lit > 0.01
    }
}

/// Saves a screenshot of `window` (xwd format, and a PPM next to it to look at) and says what
/// it shows.
///
/// The window is captured by id (`xwd -id`), never from the root window: on Xvfb with Mesa
/// (Debian 12), `xwd -root` packs an OpenGL window's 32-bit pixels as 3 bytes each into the
/// root's 4-byte-per-pixel lines, so every GL client (glxgears too) looks squeezed to 3/4 of its
/// width; a window captured by id comes out right. Pixels are read with the stride the lines
/// have (`bytes_per_line / width`): Xvfb's depth-24 visuals say 24 or 32 bits per pixel but
/// store 4 bytes.
pub fn screenshot(display: &str, window: Option<u64>, path: &Path) -> Screenshot {
    let mut xwd = Command::new("xwd");
    match window {
        Some(id) => xwd.args(["-id", &format!("{id:#x}")]),
        None => xwd.arg("-root"),
    };
    let status = xwd
        .args(["-silent", "-display", display, "-out"])
        .arg(path)
        .status()
        .expect("xwd runs (x11-apps)");
    assert!(status.success(), "xwd failed");
    let data = std::fs::read(path).expect("screenshot");
    let word = |i: usize| {
        u32::from_be_bytes([
            data[4 * i],
            data[4 * i + 1],
            data[4 * i + 2],
            data[4 * i + 3],
        ]) as usize
    };
    let (header, width, height, byte_order) = (word(0), word(4), word(5), word(7));
    let (bits_per_pixel, bytes_per_line, ncolors) = (word(11), word(12), word(19));
    let masks = [word(14) as u32, word(15) as u32, word(16) as u32];
    let stride = bytes_per_line / width.max(1);
    let stride_fits = match bits_per_pixel {
        32 => stride == 4,
        _ => stride == 3 || stride == 4,
    };
    assert!(
        stride_fits && stride * width <= bytes_per_line,
        "unexpected screenshot format: {bits_per_pixel} bits per pixel, {bytes_per_line} bytes \
         per line for {width} pixels"
    );
    let pixels = &data[header + ncolors * 12..];
    assert!(pixels.len() >= bytes_per_line * height, "short screenshot");
    let mut colours = std::collections::HashSet::new();
    let mut lit = 0usize;
    let mut lit_size = (0, 0);
    let mut ppm = format!("P6\n{width} {height}\n255\n").into_bytes();
    let mut rgb = Vec::with_capacity(width * height);
    for (y, row) in pixels.chunks(bytes_per_line).take(height).enumerate() {
        for (x, px) in row.chunks_exact(stride).take(width).enumerate() {
            let mut b = [0u8; 4];
            b[..stride].copy_from_slice(px);
            let v = if byte_order == 0 {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b) >> (8 * (4 - stride))
            } & (masks[0] | masks[1] | masks[2]);
            let channel = |mask: u32| ((v & mask) >> mask.trailing_zeros()) as u8;
            let px = [channel(masks[0]), channel(masks[1]), channel(masks[2])];
            ppm.extend_from_slice(&px);
            rgb.push(px);
            colours.insert(v);
            if v != 0 {
                lit += 1;
                lit_size = (lit_size.0.max(x + 1), lit_size.1.max(y + 1));
            }
        }
    }
    let _ = std::fs::write(path.with_extension("ppm"), ppm);
    Screenshot {
        size: (width, height),
        colours: colours.len(),
        lit: lit as f64 / (width * height).max(1) as f64,
        lit_size,
        pixels: rgb,
    }
}

/// Takes screenshots of the editor's window (the window of `size`, physical pixels) until the
/// editor has drawn something, calling `pump` (the host's event loop) for about half a second
/// between them; software OpenGL on a loaded machine can take a while for the first frame, so
/// this waits up to 15 s. Panics when nothing was drawn.
pub fn wait_until_drawn(
    display: &str,
    size: (u32, u32),
    path: &Path,
    mut pump: impl FnMut(),
) -> Screenshot {
    let start = Instant::now();
    loop {
        pump();
        let window = find_window(display, size);
        let timed_out = start.elapsed() > Duration::from_secs(15);
        let Some(window) = window else {
            assert!(!timed_out, "no {size:?} window on the screen");
            continue;
        };
        let shot = screenshot(display, Some(window), path);
        if shot.drawn() || timed_out {
            eprintln!(
                "editor screenshot: {} (and .ppm; window {window:#x}, {:?}, {} colours, {:.0} % \
                 lit, lit box {:?})",
                path.display(),
                shot.size,
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

/// Asserts that the editor's frame fills its window: the screenshot is the window's size and
/// its lit box is the whole of it, to 2 pixels.
pub fn assert_fills_window(shot: &Screenshot, window: (u32, u32)) {
    let (w, h) = (window.0 as usize, window.1 as usize);
    assert_eq!(shot.size, (w, h), "the screenshot is not the window's size");
    assert!(
        shot.lit_size.0.abs_diff(w) <= 2 && shot.lit_size.1.abs_diff(h) <= 2,
        "the editor's frame covers {:?} of its {w}x{h} window",
        shot.lit_size
    );
}

/// What the editor laid out, from its layout report (see `LAYOUT_REPORT_VAR` in
/// src/plugin/editor.rs), in logical pixels.
#[derive(Debug, Default)]
pub struct Layout {
    pub window: (f32, f32),
    pub pixels_per_point: f32,
    pub viewport: (f32, f32),
    pub content: (f32, f32),
    /// The header, each section and the footer: name and `[x0, y0, x1, y1]`.
    pub items: Vec<(String, [f32; 4])>,
}

/// Everything the editor shows, as its layout report names it.
/// (The input and output gains are in the header; "Response" is the response plot.)
pub const EDITOR_ITEMS: [&str; 10] = [
    "header",
    "Response",
    "Filters",
    "EQ",
    "Compressor",
    "Delay",
    "Reverb",
    "Limiter",
    "Meters",
    "footer",
];

/// Asks editors opened from now on to report their layout to a file, and returns the file.
///
/// Call it before the plugin is instantiated, in a test binary that has only one test (it sets
/// an environment variable, like [`headless_display`]).
pub fn layout_report_file(test: &str) -> std::path::PathBuf {
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rtfx-{test}-layout-{}.txt", std::process::id()));
    let _ = std::fs::remove_file(&path);
    // SAFETY: the caller's binary has this one test, so no other thread reads the environment.
    unsafe { std::env::set_var("RTFX_EDITOR_LAYOUT_REPORT", &path) };
    path
}

fn parse_layout(text: &str) -> Layout {
    let mut layout = Layout::default();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let name = parts.next().unwrap_or_default();
        let v: Vec<f32> = parts.filter_map(|p| p.parse().ok()).collect();
        match (name, v.as_slice()) {
            ("window", [w, h]) => layout.window = (*w, *h),
            ("pixels_per_point", [p]) => layout.pixels_per_point = *p,
            ("viewport", [w, h]) => layout.viewport = (*w, *h),
            ("content", [w, h]) => layout.content = (*w, *h),
            (name, [a, b, c, d]) => layout.items.push((name.to_string(), [*a, *b, *c, *d])),
            _ => panic!("unexpected layout line: {line}"),
        }
    }
    layout
}

/// Waits (calling `pump`) until the editor's layout report names everything and has each of
/// the `lines` (e.g. `"pixels_per_point 1.5"`, `"window 700 450"`), then half a second more (sections take a frame to find their width; the
/// report keeps changing while audio runs, as the meters' and statistics' text changes), and
/// returns the latest report.
pub fn wait_for_layout(path: &Path, lines: &[&str], mut pump: impl FnMut()) -> Layout {
    let start = Instant::now();
    let mut complete_since = None;
    loop {
        pump();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let complete = lines.iter().all(|line| text.lines().any(|l| l == *line))
            && EDITOR_ITEMS
                .iter()
                .all(|item| text.lines().any(|l| l.split(' ').next() == Some(item)));
        if !complete {
            complete_since = None;
        } else if complete_since.get_or_insert_with(Instant::now).elapsed()
            >= Duration::from_millis(500)
        {
            let layout = parse_layout(&text);
            eprintln!("editor layout: {layout:?}");
            return layout;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no complete layout report in {}: {text:?}",
            path.display()
        );
    }
}

/// Asserts that in a window too small for everything, everything can still be reached: nothing
/// runs off the right edge (sections wrap), and a solid vertical scroll bar is there (it takes
/// its width from the scroll area's view) when the content is taller than the view.
pub fn assert_everything_reachable(layout: &Layout) {
    let (w, _) = layout.window;
    assert!(
        layout.content.0 <= layout.viewport.0 + 0.5,
        "the editor's content ({:?}) is wider than its {:?} view: {layout:?}",
        layout.content,
        layout.viewport
    );
    for (item, [_, _, x1, _]) in &layout.items {
        assert!(
            *x1 <= w + 0.5,
            "{item} runs off the {w}-wide window: {layout:?}"
        );
    }
    if layout.content.1 > layout.viewport.1 + 0.5 {
        assert!(
            layout.viewport.0 < w - 4.0,
            "the content overflows but no scroll bar takes room: {layout:?}"
        );
    }
}

/// Asserts that everything the editor shows is visible without scrolling: what it laid out fits
/// its scroll area, and the header, every section and the footer lie inside the window.
pub fn assert_everything_visible(layout: &Layout) {
    let (w, h) = layout.window;
    assert!(
        layout.content.0 <= layout.viewport.0 + 0.5 && layout.content.1 <= layout.viewport.1 + 0.5,
        "the editor's content ({:?}) does not fit its {:?} view in the {w}x{h} window: {layout:?}",
        layout.content,
        layout.viewport
    );
    for item in EDITOR_ITEMS {
        let [x0, y0, x1, y1] = layout
            .items
            .iter()
            .find(|(name, _)| name == item)
            .unwrap_or_else(|| panic!("the layout report has no {item}: {layout:?}"))
            .1;
        assert!(
            x0 >= -0.5 && y0 >= -0.5 && x1 <= w + 0.5 && y1 <= h + 0.5,
            "{item} ({x0}, {y0})-({x1}, {y1}) is not inside the {w}x{h} window"
        );
    }
}

/// Asserts that nothing is on the screen yet (the check behind [`Screenshot::drawn`]).
pub fn assert_blank_screen(display: &str) {
    let path = std::env::temp_dir().join(format!("rtfx-blank-{}.xwd", std::process::id()));
    let blank = screenshot(display, None, &path);
    let _ = std::fs::remove_file(path.with_extension("ppm"));
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

/// Clicks the middle of the layout report's `item` with the mouse (xdotool, which
/// `tools/setup.sh` installs).
pub fn click(display: &str, layout: &Layout, item: &str) {
    let [x0, y0, x1, y1] = layout
        .items
        .iter()
        .find(|(name, _)| name == item)
        .unwrap_or_else(|| panic!("the layout report has no {item}: {layout:?}"))
        .1;
    let (x, y) = (((x0 + x1) / 2.0) as i32, ((y0 + y1) / 2.0) as i32);
    let status = Command::new("xdotool")
        .env("DISPLAY", display)
        .args(["mousemove", &x.to_string(), &y.to_string(), "click", "1"])
        .status()
        .expect("xdotool runs (tools/setup.sh installs it)");
    assert!(status.success(), "xdotool failed");
}
