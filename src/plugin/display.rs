//! What the editor draws of the sound: the filters' and EQ's frequency response over a live
//! spectrum, with a draggable handle per band, the compressor's and limiter's gain-reduction
//! history, and peak/RMS meters with peak hold.
//!
//! The response is computed from the coefficients the strip runs
//! ([`StripSettings::filter_sections`](super::strip::StripSettings::filter_sections)), not from
//! a second formula. The spectrum comes from the audio thread through the analyser's rings
//! ([`super::analyser`]). Handles change the plugin parameters through nice-plug's
//! `ParamSetter` with begin/end gestures (one gesture per drag or scroll step), so host
//! automation and undo see them like slider moves.
//!
//! Axes (the GUI tests check pixels against them): frequency on a log scale from
//! [`FREQ_RANGE`]`.0` at the plot's left edge to `.1` at its right edge; the response in dB
//! from [`RESPONSE_DB_RANGE`]`.1` at the top to `.0` at the bottom; the spectrum in dBFS from
//! [`SPECTRUM_DB_RANGE`]`.1` at the top to `.0` at the bottom.

use std::collections::VecDeque;
use std::time::Instant;

use egui::{Color32, Pos2, Rect, Sense, Stroke, Vec2, pos2, vec2};
use nice_plug::prelude::*;

use super::Meters;
use super::analyser::Spectrum;
use super::params::RtfxParams;
use crate::dsp::filter::design::magnitude_db;

/// The frequency axis, in Hz (left and right edges).
pub const FREQ_RANGE: (f32, f32) = (20.0, 20_000.0);
/// The response axis, in dB (bottom and top edges).
pub const RESPONSE_DB_RANGE: (f32, f32) = (-24.0, 24.0);
/// The spectrum axis, in dBFS (bottom and top edges).
pub const SPECTRUM_DB_RANGE: (f32, f32) = (-96.0, 0.0);
/// Height of the response plot, in logical pixels.
pub const PLOT_HEIGHT: f32 = 190.0;
/// The response curve's colour.
pub const CURVE_COLOUR: Color32 = Color32::from_rgb(255, 196, 40);
/// The output spectrum's fill colour.
pub const OUTPUT_SPECTRUM_COLOUR: Color32 = Color32::from_rgb(38, 84, 128);
/// The input spectrum's line colour.
pub const INPUT_SPECTRUM_COLOUR: Color32 = Color32::from_rgb(150, 150, 165);
/// The plot's background.
pub const PLOT_BACKGROUND: Color32 = Color32::from_gray(16);
/// The compressor's gain-reduction trace.
pub const COMPRESSOR_COLOUR: Color32 = Color32::from_rgb(230, 150, 50);
/// The limiter's gain-reduction trace.
pub const LIMITER_COLOUR: Color32 = Color32::from_rgb(225, 70, 70);
/// Seconds of gain-reduction history shown.
pub const GR_HISTORY_S: f64 = 4.0;
/// The gain-reduction history's scale: 0 dB at the top to this at the bottom.
pub const GR_RANGE_DB: f32 = -24.0;
/// How long a meter's peak hold stays before it falls back, in seconds.
pub const PEAK_HOLD_S: f32 = 2.0;
/// The RMS meters' averaging time constant, in seconds.
pub const RMS_TIME_S: f32 = 0.3;
/// What the plot shows and how its handles work (its tooltip).
pub const PLOT_HELP: &str = "Filters and EQ (yellow) over the output spectrum (blue) and the \
    input's (grey).\nDrag a handle: frequency and gain. Scroll or Shift+drag: Q (the order for \
    HP and LP). Double click: 0 dB.";
/// The sample rate the response is drawn at before the plugin is activated.
const IDLE_SAMPLE_RATE: f64 = 48_000.0;

/// Maps frequency and levels to points in a plot's rectangle and back.
#[derive(Debug, Clone, Copy)]
pub struct PlotAxes {
    /// The plot's rectangle (logical pixels).
    pub rect: Rect,
}

impl PlotAxes {
    /// The x of `freq_hz` (log scale over [`FREQ_RANGE`]).
    pub fn x_of_freq(&self, freq_hz: f32) -> f32 {
        let (lo, hi) = FREQ_RANGE;
        let t = (freq_hz.max(1e-3) / lo).ln() / (hi / lo).ln();
        self.rect.left() + t * self.rect.width()
    }

    /// The frequency at `x` (inverse of [`Self::x_of_freq`]).
    pub fn freq_of_x(&self, x: f32) -> f32 {
        let (lo, hi) = FREQ_RANGE;
        let t = (x - self.rect.left()) / self.rect.width().max(1.0);
        lo * (hi / lo).powf(t)
    }

    /// The y of a response level in dB ([`RESPONSE_DB_RANGE`]).
    pub fn y_of_db(&self, db: f32) -> f32 {
        self.y_in(db, RESPONSE_DB_RANGE)
    }

    /// The response level at `y` (inverse of [`Self::y_of_db`]).
    pub fn db_of_y(&self, y: f32) -> f32 {
        let (lo, hi) = RESPONSE_DB_RANGE;
        hi - (y - self.rect.top()) / self.rect.height().max(1.0) * (hi - lo)
    }

    /// The y of a spectrum level in dBFS ([`SPECTRUM_DB_RANGE`]).
    pub fn y_of_spectrum_db(&self, db: f32) -> f32 {
        self.y_in(db, SPECTRUM_DB_RANGE)
    }

    fn y_in(&self, db: f32, (lo, hi): (f32, f32)) -> f32 {
        self.rect.top() + (hi - db) / (hi - lo) * self.rect.height()
    }
}

/// A level meter's displayed state: peak (falling), peak hold, RMS.
#[derive(Debug, Clone, Copy)]
struct LevelMeter {
    peak: f32,
    hold: f32,
    held_for: f32,
    mean_square: f32,
}

impl Default for LevelMeter {
    fn default() -> Self {
        Self {
            peak: 0.0,
            hold: 0.0,
            held_for: 0.0,
            mean_square: 0.0,
        }
    }
}

impl LevelMeter {
    /// Takes a new peak and mean square (since the last frame), `dt` seconds later.
    fn update(&mut self, peak: f32, mean_square: Option<f32>, dt: f32) {
        // Peaks fall at about 20 dB/s.
        self.peak = peak.max(self.peak * 10f32.powf(-dt));
        self.held_for += dt;
        if peak >= self.hold || self.held_for > PEAK_HOLD_S {
            self.hold = peak.max(if self.held_for > PEAK_HOLD_S {
                self.peak
            } else {
                self.hold
            });
            self.held_for = 0.0;
        }
        if let Some(ms) = mean_square {
            let k = 1.0 - (-dt / RMS_TIME_S).exp();
            self.mean_square += (ms - self.mean_square) * k;
        }
    }
}

/// The editor's drawing state (GUI thread): the analysers, the meters, the history.
pub struct SoundDisplay {
    input: Spectrum,
    output: Spectrum,
    last_frame: Option<Instant>,
    started: Instant,
    /// (seconds since `started`, compressor GR dB, limiter GR dB), oldest first.
    gr_history: VecDeque<(f64, f32, f32)>,
    meters: [LevelMeter; 2],
    last_energy: Option<(f64, f64, u64)>,
    /// Scroll not yet turned into filter-order steps, per pass filter.
    order_scroll: [f32; 2],
}

impl Default for SoundDisplay {
    fn default() -> Self {
        Self {
            input: Spectrum::new(),
            output: Spectrum::new(),
            last_frame: None,
            started: Instant::now(),
            gr_history: VecDeque::new(),
            meters: [LevelMeter::default(); 2],
            last_energy: None,
            order_scroll: [0.0; 2],
        }
    }
}

/// The gain reductions on screen, in dB (≤ 0): compressor and limiter.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShownReduction {
    /// The compressor's.
    pub compressor_db: f32,
    /// The limiter's.
    pub limiter_db: f32,
}

impl SoundDisplay {
    /// Takes what the audio thread has sent since the last frame (once per frame, before
    /// drawing): the analyser's samples, the peaks, the energies and the gain reduction.
    pub fn update(&mut self, meters: &Meters) {
        let now = Instant::now();
        let dt = self
            .last_frame
            .map_or(0.0, |t| now.duration_since(t).as_secs_f32())
            .min(1.0);
        self.last_frame = Some(now);
        meters.with_analyser(|feed| {
            self.input.take(&mut feed.input);
            self.output.take(&mut feed.output);
        });
        self.input.analyse(dt);
        self.output.analyse(dt);

        let levels = meters.take_levels();
        let energy = meters.energy();
        let mean_squares = self.last_energy.and_then(|(i0, o0, n0)| {
            let frames = energy.2.checked_sub(n0).filter(|&n| n > 0)? as f64;
            Some([
                ((energy.0 - i0) / frames).max(0.0) as f32,
                ((energy.1 - o0) / frames).max(0.0) as f32,
            ])
        });
        self.last_energy = Some(energy);
        for (i, (meter, peak)) in self
            .meters
            .iter_mut()
            .zip([levels.input_peak, levels.output_peak])
            .enumerate()
        {
            meter.update(peak, mean_squares.map(|m| m[i]), dt);
        }

        let t = now.duration_since(self.started).as_secs_f64();
        self.gr_history
            .push_back((t, levels.compressor_gr_db, levels.limiter_gr_db));
        while self
            .gr_history
            .front()
            .is_some_and(|&(t0, _, _)| t - t0 > GR_HISTORY_S + 0.5)
        {
            self.gr_history.pop_front();
        }
    }

    /// The latest gain reductions (for the meters' text).
    pub fn reduction(&self) -> ShownReduction {
        // The largest over the last 100 ms, so that the number can be read.
        let Some(&(t, _, _)) = self.gr_history.back() else {
            return ShownReduction::default();
        };
        let recent = self.gr_history.iter().rev().take_while(|e| t - e.0 < 0.1);
        recent.fold(ShownReduction::default(), |r, &(_, c, l)| ShownReduction {
            compressor_db: r.compressor_db.min(c),
            limiter_db: r.limiter_db.min(l),
        })
    }

    /// The response plot, `width` wide: grid, spectra, the response curve and the handles.
    /// Returns the plot's rectangle.
    pub fn response_plot(
        &mut self,
        ui: &mut egui::Ui,
        params: &RtfxParams,
        setter: &ParamSetter,
        sample_rate: f32,
        width: f32,
    ) -> Rect {
        let (rect, plot) = ui.allocate_exact_size(vec2(width, PLOT_HEIGHT), Sense::hover());
        plot.on_hover_text(PLOT_HELP);
        let axes = PlotAxes { rect };
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, PLOT_BACKGROUND);
        draw_grid(&painter, &axes);

        let analysed = sample_rate > 0.0;
        if analysed {
            self.draw_spectra(&painter, &axes, sample_rate);
        }

        let fs = if analysed {
            f64::from(sample_rate)
        } else {
            IDLE_SAMPLE_RATE
        };
        // The settings the strip is heading for, from the parameters (tempo does not matter).
        let settings = params.settings(super::DEFAULT_TEMPO);
        let sections = settings.filter_sections(fs);
        let nyquist = (fs / 2.0) as f32;
        let mut curve = Vec::with_capacity(rect.width() as usize + 2);
        let mut x = rect.left();
        while x <= rect.right() + 0.5 {
            let f = axes.freq_of_x(x).min(nyquist * 0.999);
            let db = magnitude_db(&sections, f64::from(f), fs) as f32;
            // A little beyond the plot, so that steep slopes leave it cleanly.
            let (lo, hi) = RESPONSE_DB_RANGE;
            let y = axes.y_of_db(db.clamp(lo - 2.0, hi + 2.0));
            curve.push(pos2(x, y));
            x += 1.0;
        }
        painter.add(egui::Shape::line(curve, Stroke::new(2.5, CURVE_COLOUR)));

        self.handles(ui, &painter, &axes, params, setter);
        rect
    }

    /// The output spectrum filled, the input's as a line.
    fn draw_spectra(&self, painter: &egui::Painter, axes: &PlotAxes, sample_rate: f32) {
        let rect = axes.rect;
        let mut fill = egui::Mesh::default();
        let mut input_line = Vec::with_capacity(rect.width() as usize + 1);
        let mut x = rect.left();
        while x < rect.right() {
            let (lo, hi) = (axes.freq_of_x(x), axes.freq_of_x(x + 1.0));
            let out_db = self.output.level_db(lo, hi, sample_rate);
            let top = axes.y_of_spectrum_db(out_db).max(rect.top());
            if top < rect.bottom() {
                fill.add_colored_rect(
                    Rect::from_min_max(pos2(x, top), pos2(x + 1.0, rect.bottom())),
                    OUTPUT_SPECTRUM_COLOUR,
                );
            }
            let in_db = self.input.level_db(lo, hi, sample_rate);
            input_line.push(pos2(
                x + 0.5,
                axes.y_of_spectrum_db(in_db)
                    .clamp(rect.top(), rect.bottom()),
            ));
            x += 1.0;
        }
        painter.add(egui::Shape::mesh(fill));
        painter.add(egui::Shape::line(
            input_line,
            Stroke::new(1.0, INPUT_SPECTRUM_COLOUR),
        ));
    }

    /// One handle per band: high-pass, low-pass (frequency by drag, order by scroll) and the
    /// three EQ bands (frequency and gain by drag, Q by scroll or Shift+drag; a double click
    /// resets the gain).
    fn handles(
        &mut self,
        ui: &mut egui::Ui,
        painter: &egui::Painter,
        axes: &PlotAxes,
        p: &RtfxParams,
        setter: &ParamSetter,
    ) {
        let eq_on = p.eq_on.value();
        let bands: [Band; 5] = [
            Band::pass("HP", &p.hp_freq, &p.hp_order, p.hp_on.value(), 0),
            Band::eq("LS", &p.ls_freq, &p.ls_gain, &p.ls_q, eq_on),
            Band::eq("PK", &p.pk_freq, &p.pk_gain, &p.pk_q, eq_on),
            Band::eq("HS", &p.hs_freq, &p.hs_gain, &p.hs_q, eq_on),
            Band::pass("LP", &p.lp_freq, &p.lp_order, p.lp_on.value(), 1),
        ];
        let rect = axes.rect;
        for band in bands {
            let centre = band.position(axes);
            let id = ui.make_persistent_id(("rtfx-band-handle", band.label));
            let response = ui.interact(
                Rect::from_center_size(centre, Vec2::splat(18.0)),
                id,
                Sense::click_and_drag(),
            );
            let shift = ui.input(|i| i.modifiers.shift);
            if response.drag_started() {
                band.begin(setter);
            }
            if response.dragged()
                && let Some(pointer) = response.interact_pointer_pos()
            {
                let pointer = pointer.clamp(rect.min, rect.max);
                if shift && band.q.is_some() {
                    band.set_q_by(setter, -response.drag_delta().y / 60.0);
                } else {
                    setter.set_parameter(band.freq, axes.freq_of_x(pointer.x));
                    if let Some(gain) = band.gain {
                        setter.set_parameter(gain, axes.db_of_y(pointer.y));
                    }
                }
            }
            if response.drag_stopped() {
                band.end(setter);
            }
            if response.double_clicked()
                && let Some(gain) = band.gain
            {
                setter.begin_set_parameter(gain);
                setter.set_parameter(gain, gain.default_plain_value());
                setter.end_set_parameter(gain);
            }
            if response.hovered() {
                let scroll = ui.input_mut(|i| std::mem::take(&mut i.smooth_scroll_delta).y);
                if scroll != 0.0 {
                    self.scroll_band(&band, setter, scroll);
                }
            }

            let active = response.hovered() || response.dragged();
            let colour = if band.on {
                band.colour()
            } else {
                Color32::from_gray(90)
            };
            painter.circle_filled(centre, if active { 8.0 } else { 6.5 }, colour);
            painter.circle_stroke(
                centre,
                if active { 8.0 } else { 6.5 },
                Stroke::new(1.0, Color32::from_gray(230)),
            );
            let label_pos = centre + vec2(0.0, -14.0);
            let text = if active {
                band.describe()
            } else {
                band.label.to_string()
            };
            painter.text(
                label_pos,
                egui::Align2::CENTER_BOTTOM,
                text,
                egui::FontId::proportional(11.0),
                Color32::from_gray(220),
            );
        }
    }

    /// Scroll over a handle: Q for the EQ bands (a factor of 2 per 250 points), order for the
    /// pass filters (one step per 40 points).
    fn scroll_band(&mut self, band: &Band, setter: &ParamSetter, scroll: f32) {
        if band.q.is_some() {
            band.begin(setter);
            band.set_q_by(setter, scroll / 250.0);
            band.end(setter);
        } else if let (Some(order), Some(slot)) = (band.order, band.order_slot) {
            let acc = &mut self.order_scroll[slot];
            *acc += scroll;
            let steps = (*acc / 40.0).trunc();
            if steps != 0.0 {
                *acc -= steps * 40.0;
                setter.begin_set_parameter(order);
                setter.set_parameter(order, order.value() + steps as i32);
                setter.end_set_parameter(order);
            }
        }
    }

    /// The gain-reduction history (compressor and limiter, the newest at the right) over
    /// `size`. Returns its rectangle.
    pub fn reduction_history(&self, ui: &mut egui::Ui, size: Vec2) -> Rect {
        let (rect, _) = ui.allocate_exact_size(size, Sense::hover());
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, PLOT_BACKGROUND);
        let y_of = |db: f32| rect.top() + (db.max(GR_RANGE_DB) / GR_RANGE_DB) * rect.height();
        for db in [-6.0, -12.0, -18.0] {
            let y = y_of(db);
            painter.line_segment(
                [pos2(rect.left(), y), pos2(rect.right(), y)],
                Stroke::new(1.0, Color32::from_gray(45)),
            );
            painter.text(
                pos2(rect.left() + 2.0, y - 1.0),
                egui::Align2::LEFT_BOTTOM,
                format!("{db:.0}"),
                egui::FontId::proportional(10.0),
                Color32::from_gray(110),
            );
        }
        let Some(&(now, _, _)) = self.gr_history.back() else {
            return rect;
        };
        let x_of = |t: f64| rect.right() - ((now - t) / GR_HISTORY_S) as f32 * rect.width();
        for (pick, colour) in [(0usize, COMPRESSOR_COLOUR), (1usize, LIMITER_COLOUR)] {
            let line: Vec<Pos2> = self
                .gr_history
                .iter()
                .map(|&(t, c, l)| pos2(x_of(t), y_of(if pick == 0 { c } else { l })))
                .collect();
            painter.add(egui::Shape::line(line, Stroke::new(1.5, colour)));
        }
        rect
    }

    /// The input (0) or output (1) meter: RMS bar, peak, peak hold, `width` wide, with the
    /// figures after it.
    pub fn level_meter(&self, ui: &mut egui::Ui, which: usize, label: &str, width: f32) {
        let m = self.meters[which.min(1)];
        ui.horizontal(|ui| {
            ui.add_sized([28.0, 14.0], egui::Label::new(label));
            let (rect, _) = ui.allocate_exact_size(vec2(width, 12.0), Sense::hover());
            let painter = ui.painter();
            painter.rect_filled(rect, 2.0, Color32::from_gray(40));
            let x_of = |level: f32| {
                let db = to_db(level);
                rect.left() + ((db + 60.0) / 60.0).clamp(0.0, 1.0) * rect.width()
            };
            let bar = |to: f32, colour: Color32| {
                painter.rect_filled(
                    Rect::from_min_max(rect.min, pos2(to, rect.bottom())),
                    2.0,
                    colour,
                );
            };
            bar(x_of(m.peak), Color32::from_rgb(45, 100, 55));
            bar(x_of(m.mean_square.sqrt()), Color32::from_rgb(80, 175, 90));
            if m.hold > 1e-6 {
                let x = x_of(m.hold);
                let colour = if m.hold >= 1.0 {
                    Color32::from_rgb(240, 60, 60)
                } else {
                    Color32::from_gray(230)
                };
                painter.line_segment(
                    [pos2(x, rect.top()), pos2(x, rect.bottom())],
                    Stroke::new(2.0, colour),
                );
            }
            ui.label(format!(
                "pk {} rms {}",
                db_text(m.hold),
                db_text(m.mean_square.sqrt())
            ))
            .on_hover_text("peak hold and RMS (300 ms), dBFS");
        });
    }
}

/// A level in dB, −120 for silence.
pub fn to_db(x: f32) -> f32 {
    if x > 1e-6 {
        crate::dsp::gain_to_db(f64::from(x)) as f32
    } else {
        -120.0
    }
}

/// A level as dB text, `-inf` below −60 dB.
fn db_text(x: f32) -> String {
    let db = to_db(x);
    if db <= -60.0 {
        "-inf".to_string()
    } else {
        format!("{db:.1}")
    }
}

/// Grid lines and labels: frequencies by decade (1-2-5), response levels every 6 dB.
fn draw_grid(painter: &egui::Painter, axes: &PlotAxes) {
    let rect = axes.rect;
    let line = Stroke::new(1.0, Color32::from_gray(38));
    let font = egui::FontId::proportional(10.0);
    let label = Color32::from_gray(115);
    for f in [
        30.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10_000.0,
    ] {
        let x = axes.x_of_freq(f);
        painter.line_segment([pos2(x, rect.top()), pos2(x, rect.bottom())], line);
        let text = if f >= 1000.0 {
            format!("{}k", f / 1000.0)
        } else {
            format!("{f}")
        };
        painter.text(
            pos2(x + 2.0, rect.bottom() - 2.0),
            egui::Align2::LEFT_BOTTOM,
            text,
            font.clone(),
            label,
        );
    }
    let (lo, hi) = RESPONSE_DB_RANGE;
    let mut db = lo + 6.0;
    while db < hi {
        let y = axes.y_of_db(db);
        let stroke = if db == 0.0 {
            Stroke::new(1.0, Color32::from_gray(70))
        } else {
            line
        };
        painter.line_segment([pos2(rect.left(), y), pos2(rect.right(), y)], stroke);
        painter.text(
            pos2(rect.right() - 2.0, y - 1.0),
            egui::Align2::RIGHT_BOTTOM,
            format!("{db:+.0}"),
            font.clone(),
            label,
        );
        db += 6.0;
    }
}

/// A band's handle: its parameters and where it sits.
struct Band<'a> {
    label: &'static str,
    freq: &'a FloatParam,
    gain: Option<&'a FloatParam>,
    q: Option<&'a FloatParam>,
    order: Option<&'a IntParam>,
    /// The high-pass (0) or low-pass (1), for the order's scroll accumulator.
    order_slot: Option<usize>,
    on: bool,
}

impl<'a> Band<'a> {
    fn pass(
        label: &'static str,
        freq: &'a FloatParam,
        order: &'a IntParam,
        on: bool,
        slot: usize,
    ) -> Self {
        Self {
            label,
            freq,
            gain: None,
            q: None,
            order: Some(order),
            order_slot: Some(slot),
            on,
        }
    }

    fn eq(
        label: &'static str,
        freq: &'a FloatParam,
        gain: &'a FloatParam,
        q: &'a FloatParam,
        on: bool,
    ) -> Self {
        Self {
            label,
            freq,
            gain: Some(gain),
            q: Some(q),
            order: None,
            order_slot: None,
            on,
        }
    }

    /// The handle's centre: at the band's frequency, at its gain (0 dB for the pass filters).
    fn position(&self, axes: &PlotAxes) -> Pos2 {
        let x = axes
            .x_of_freq(self.freq.value())
            .clamp(axes.rect.left(), axes.rect.right());
        let db = self.gain.map_or(0.0, |g| g.value());
        pos2(x, axes.y_of_db(db))
    }

    fn colour(&self) -> Color32 {
        match self.label {
            "HP" | "LP" => Color32::from_rgb(120, 180, 240),
            "LS" => Color32::from_rgb(110, 210, 140),
            "PK" => Color32::from_rgb(230, 120, 200),
            _ => Color32::from_rgb(240, 150, 90),
        }
    }

    fn describe(&self) -> String {
        let mut text = format!("{} {}", self.label, self.freq);
        if let Some(g) = self.gain {
            text.push_str(&format!(" {g}"));
        }
        if let Some(q) = self.q {
            text.push_str(&format!(" Q {q}"));
        }
        if let Some(o) = self.order {
            text.push_str(&format!(" order {}", o.value()));
        }
        text
    }

    /// Starts a gesture on every parameter a drag may change.
    fn begin(&self, setter: &ParamSetter) {
        setter.begin_set_parameter(self.freq);
        if let Some(g) = self.gain {
            setter.begin_set_parameter(g);
        }
        if let Some(q) = self.q {
            setter.begin_set_parameter(q);
        }
    }

    fn end(&self, setter: &ParamSetter) {
        setter.end_set_parameter(self.freq);
        if let Some(g) = self.gain {
            setter.end_set_parameter(g);
        }
        if let Some(q) = self.q {
            setter.end_set_parameter(q);
        }
    }

    /// Multiplies Q by `2^octaves` (inside a gesture).
    fn set_q_by(&self, setter: &ParamSetter, octaves: f32) {
        if let Some(q) = self.q {
            setter.set_parameter(q, q.value() * octaves.exp2());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axes() -> PlotAxes {
        PlotAxes {
            rect: Rect::from_min_size(pos2(10.0, 50.0), vec2(600.0, 240.0)),
        }
    }

    /// The axes put the ranges' ends at the edges, a decade at a third of the width, and the
    /// inverses undo them.
    #[test]
    fn axes_map_the_ranges_to_the_edges() {
        let a = axes();
        assert!((a.x_of_freq(20.0) - 10.0).abs() < 1e-3);
        assert!((a.x_of_freq(20_000.0) - 610.0).abs() < 1e-3);
        assert!((a.x_of_freq(200.0) - 210.0).abs() < 1e-3);
        assert!((a.y_of_db(24.0) - 50.0).abs() < 1e-3);
        assert!((a.y_of_db(-24.0) - 290.0).abs() < 1e-3);
        assert!((a.y_of_db(12.0) - 110.0).abs() < 1e-3);
        assert!((a.y_of_spectrum_db(0.0) - 50.0).abs() < 1e-3);
        assert!((a.y_of_spectrum_db(-96.0) - 290.0).abs() < 1e-3);
        for f in [20.0, 97.0, 1000.0, 15_000.0] {
            assert!((a.freq_of_x(a.x_of_freq(f)) / f - 1.0).abs() < 1e-4);
        }
        for db in [-24.0, -3.5, 0.0, 17.0] {
            assert!((a.db_of_y(a.y_of_db(db)) - db).abs() < 1e-4);
        }
    }

    /// Peak hold keeps the highest peak for [`PEAK_HOLD_S`], then follows the falling peak;
    /// the RMS settles at the signal's RMS.
    #[test]
    fn meters_hold_peaks_and_average_power() {
        let mut m = LevelMeter::default();
        m.update(0.8, Some(0.25), 0.03);
        assert_eq!(m.hold, 0.8);
        for _ in 0..60 {
            // 1.8 s of a quieter signal: the hold stays.
            m.update(0.1, Some(0.25), 0.03);
        }
        assert_eq!(m.hold, 0.8);
        for _ in 0..10 {
            m.update(0.1, Some(0.25), 0.03);
        }
        assert!(m.hold < 0.8 && m.hold >= 0.1, "{}", m.hold);
        for _ in 0..200 {
            m.update(0.1, Some(0.25), 0.03);
        }
        assert!((m.mean_square.sqrt() - 0.5).abs() < 1e-3);
    }
}
