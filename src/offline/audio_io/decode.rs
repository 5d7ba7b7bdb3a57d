//! Everything but plain WAV (FLAC, Ogg Vorbis, MP3, AIFF, exotic WAV codecs), decoded by
//! symphonia, with the checks that catch files cut short.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::{ReadOptions, at_frame, read_up_to, sniff_format};
use crate::error::{Error, Result};

pub(super) struct SymphoniaSource {
    pub(super) format_reader: Box<dyn symphonia::core::formats::FormatReader>,
    pub(super) decoder: Box<dyn symphonia::core::codecs::audio::AudioDecoder>,
    pub(super) track_id: u32,
    pub(super) format: String,
    pub(super) subtype: String,
    pub(super) sample_rate: u32,
    pub(super) channels: usize,
    pub(super) frames: Option<u64>,
    /// Whether `frames` is exact (not a bitrate estimate), so the end checks it.
    pub(super) frames_exact: bool,
    /// Decoded frames not yet delivered, planar.
    pub(super) pending: Vec<Vec<f32>>,
    pub(super) pending_pos: usize,
    pub(super) done: bool,
    pub(super) shown: String,
    pub(super) options: ReadOptions,
    /// Frames decoded (or stood in for by silence) so far: the position of the next packet.
    pub(super) decoded: u64,
    /// Frames missing: damaged packets read as silence, or the end cut short.
    pub(super) lost: u64,
    /// Whether packet timestamps count frames from the start (time base 1/rate), so a jump
    /// in them shows data the demuxer skipped.
    pub(super) pts_in_frames: bool,
    /// False for an Ogg stream whose last page is not marked as its end: the file was cut.
    pub(super) ended_properly: bool,
    /// A packet read but not yet decoded (silence for a gap before it goes first).
    pub(super) held: Option<symphonia::core::packet::Packet>,
    /// What was let pass, for warnings.
    pub(super) damage: Vec<String>,
    /// Title, artist, album and comment, where the file carries them.
    pub(super) tags: super::Tags,
}

/// Whether an Ogg file's last page carries the end-of-stream flag, as every complete Ogg
/// stream's does (RFC 3533). A file cut short ends on a page without it.
pub(super) fn ogg_has_end_page(path: &Path) -> bool {
    const TAIL: u64 = 1 << 16;
    let tail = File::open(path).and_then(|mut f| {
        let len = f.seek(SeekFrom::End(0))?;
        f.seek(SeekFrom::Start(len.saturating_sub(TAIL)))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(buf)
    });
    let Ok(tail) = tail else {
        // Unreadable now: decoding will say so.
        return true;
    };
    // The last page header: "OggS", version 0, the header-type flags (0x04: last page), and
    // at byte 26 the segment count, whose table gives the body's length: the page must be
    // whole.
    let Some(start) = tail
        .windows(5)
        .rposition(|w| &w[..4] == b"OggS" && w[4] == 0)
    else {
        return false;
    };
    let page = &tail[start..];
    let Some(&segments) = page.get(26) else {
        return false;
    };
    let table_end = 27 + usize::from(segments);
    let Some(table) = page.get(27..table_end) else {
        return false;
    };
    let body: usize = table.iter().map(|&b| usize::from(b)).sum();
    page[5] & 0x04 != 0 && page.len() >= table_end + body
}

/// Whether an MP3 file states its length exactly: a Xing/Info (LAME) or VBRI header in its
/// first frame. Without one, the length is an estimate from the bitrate and file size.
pub(super) fn mp3_length_is_stated(path: &Path) -> bool {
    let mut head = vec![0u8; 1 << 16];
    let got = File::open(path)
        .and_then(|mut f| read_up_to(&mut f, &mut head))
        .unwrap_or(0);
    let head = &head[..got];
    // Skip an ID3v2 tag (its size is four 7-bit bytes, plus a footer when flagged).
    let mut start = 0usize;
    if head.len() >= 10 && head.starts_with(b"ID3") {
        let size = head[6..10]
            .iter()
            .fold(0usize, |acc, &b| (acc << 7) | usize::from(b & 0x7F));
        start = 10 + size + if head[5] & 0x10 != 0 { 10 } else { 0 };
    }
    let Some(sync) = head.get(start..).and_then(|rest| {
        rest.windows(2)
            .position(|w| w[0] == 0xFF && w[1] & 0xE0 == 0xE0)
    }) else {
        return false;
    };
    // The tag sits after the side information: within the first 200 bytes of the frame.
    let frame = &head[start + sync..head.len().min(start + sync + 200)];
    frame
        .windows(4)
        .any(|w| w == b"Xing" || w == b"Info" || w == b"VBRI")
}

impl SymphoniaSource {
    pub(super) fn open(
        path: &Path,
        shown: &str,
        head: &[u8],
        options: ReadOptions,
    ) -> Result<Self> {
        use symphonia::core::codecs::audio::AudioDecoderOptions;
        use symphonia::core::formats::probe::Hint;
        use symphonia::core::formats::{FormatOptions, TrackType};
        use symphonia::core::io::MediaSourceStream;
        use symphonia::core::meta::MetadataOptions;

        let detected = sniff_format(head);
        let not_audio = |why: String| {
            Error::format(format!(
                "Input '{shown}' is not audio rtfx can decode (detected: {detected}): {why}"
            ))
            .with_parameter_name(shown)
            .with_suggestion(
                "supported inputs are WAV, FLAC, OGG/Vorbis, MP3 and AIFF; convert the file first \
                 (e.g. with ffmpeg)",
            )
        };
        let file = File::open(path)
            .map_err(|e| Error::io(format!("Cannot open input '{shown}': {e}"), shown))?;
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let mut format_reader = symphonia::default::get_probe()
            .probe(
                &hint,
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| match (&e, detected) {
                // A format rtfx reads whose contents do not hold together: damage, not a
                // wrong format.
                (
                    symphonia::core::errors::Error::DecodeError(_)
                    | symphonia::core::errors::Error::IoError(_),
                    "FLAC" | "OGG" | "MP3" | "AIFF" | "RIFF (WAV)",
                ) => Error::format(format!(
                    "Input '{shown}' looks like {detected} but is damaged: {e}"
                ))
                .with_parameter_name(shown)
                .with_suggestion("the file is corrupt or truncated; re-export it"),
                _ => not_audio(e.to_string()),
            })?;
        let track = format_reader
            .default_track(TrackType::Audio)
            .ok_or_else(|| not_audio("no audio track".into()))?;
        let track_id = track.id;
        let frames = track.num_frames;
        let time_base = track.time_base;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| not_audio("no audio codec parameters".into()))?
            .clone();
        let decoder_options = AudioDecoderOptions::default().verify(options.verify);
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &decoder_options)
            .map_err(|e| not_audio(format!("unsupported codec ({e})")))?;
        let sample_rate = params.sample_rate.unwrap_or(0);
        let channels = params.channels.as_ref().map_or(0, |c| c.count());
        let format = match detected {
            "FLAC" => "FLAC",
            "OGG" => "OGG",
            "MP3" => "MP3",
            "AIFF" => "AIFF",
            "RIFF (WAV)" => "WAV",
            _ => "audio",
        }
        .to_string();
        let codec_name = symphonia::default::get_codecs()
            .get_audio_decoder(params.codec)
            .map(|d| d.codec.info.short_name.to_uppercase())
            .unwrap_or_else(|| "UNKNOWN".into());
        let subtype = match (params.bits_per_sample, format.as_str()) {
            (Some(bits), "FLAC" | "AIFF" | "WAV") => format!("PCM_{bits}"),
            _ => codec_name,
        };
        let frames_exact = frames.is_some() && (format != "MP3" || mp3_length_is_stated(path));
        let tags = read_tags(format_reader.as_mut());
        let ended_properly = format != "OGG" || ogg_has_end_page(path);
        // FLAC frame headers number their samples; other formats' timestamps carry encoder
        // delay and trimming, so only FLAC's are trusted to reveal skipped data.
        let pts_in_frames = format == "FLAC"
            && time_base.is_some_and(|tb| tb.numer.get() == 1 && tb.denom.get() == sample_rate);
        Ok(SymphoniaSource {
            format_reader,
            decoder,
            track_id,
            format,
            subtype,
            sample_rate,
            channels,
            frames,
            frames_exact,
            pending: vec![Vec::new(); channels],
            pending_pos: 0,
            done: false,
            shown: shown.to_string(),
            options,
            decoded: 0,
            lost: 0,
            pts_in_frames,
            ended_properly,
            held: None,
            damage: Vec::new(),
            tags,
        })
    }

    /// A damaged stretch at the current position: an error, or (with allow_truncated) a note
    /// and `frames` counted as lost.
    pub(super) fn damaged(&mut self, problem: &str, frames: u64) -> Result<()> {
        self.fault("damaged", problem, frames)
    }

    /// Like [`damaged`](Self::damaged), with the word for what is wrong ("damaged",
    /// "truncated").
    pub(super) fn fault(&mut self, what: &str, problem: &str, frames: u64) -> Result<()> {
        let at = at_frame(self.decoded, self.sample_rate);
        if !self.options.allow_truncated {
            return Err(Error::format(format!(
                "Input '{}' is {what} at {at}: {problem}",
                self.shown
            ))
            .with_parameter_name(&self.shown)
            .with_suggestion(
                "re-export or repair the file, or pass --allow-truncated to render what decodes \
                 (damaged packets become silence and are counted)",
            ));
        }
        self.lost += frames;
        self.damage.push(format!(
            "Input '{}' is {what} at {at}: {problem}; {frames} frames lost",
            self.shown
        ));
        Ok(())
    }

    /// `len` frames of silence standing in for damaged audio, as the next pending block.
    pub(super) fn silence(&mut self, len: usize) {
        for p in &mut self.pending {
            p.clear();
            p.resize(len, 0.0);
        }
        self.pending_pos = 0;
        self.decoded += len as u64;
    }

    /// The checks at the end of the stream: the length the header declares, and the
    /// checksum.
    pub(super) fn finish(&mut self) -> Result<()> {
        if self.frames_exact
            && let Some(declared) = self.frames
            && self.decoded < declared
        {
            let missing = declared - self.decoded;
            let problem = format!(
                "its header declares {declared} frames ({:.3} s), so {missing} frames are \
                 missing",
                declared as f64 / f64::from(self.sample_rate.max(1)),
            );
            self.fault("truncated", &problem, missing)?;
        }
        if !self.ended_properly {
            self.ended_properly = true;
            self.fault(
                "truncated",
                "its last Ogg page does not end the stream (how much is missing is unknown)",
                0,
            )?;
        }
        // With frames already counted lost, a checksum mismatch says nothing new.
        if self.options.verify && self.decoder.finalize().verify_ok == Some(false) && self.lost == 0
        {
            let problem = "the decoded audio does not match the MD5 checksum in its header";
            if !self.options.allow_truncated {
                return Err(Error::format(format!("Input '{}': {problem}", self.shown))
                    .with_parameter_name(&self.shown)
                    .with_suggestion(
                        "the file is corrupt; re-export it, or pass --no-verify to skip the \
                         check (or --allow-truncated to render it anyway)",
                    ));
            }
            self.damage
                .push(format!("Input '{}': {problem}", self.shown));
        }
        Ok(())
    }

    /// Decodes the next packet into `pending`; false at the end of the stream (after its
    /// checks).
    pub(super) fn decode_next(&mut self) -> Result<bool> {
        use symphonia::core::errors::Error as SymErr;
        loop {
            let next = match self.held.take() {
                Some(p) => Ok(Some(p)),
                None => self.format_reader.next_packet(),
            };
            let packet = match next {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.finish()?;
                    return Ok(false);
                }
                // The file ends inside a packet: the length check names what is missing.
                Err(SymErr::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.finish()?;
                    return Ok(false);
                }
                Err(e) => {
                    let problem = format!("the container cannot be read ({e})");
                    // Nothing after this point can be located: stop here either way.
                    self.damaged(&problem, 0)?;
                    self.finish()?;
                    return Ok(false);
                }
            };
            if packet.track_id != self.track_id {
                continue;
            }
            // A packet that starts later than the audio so far: the demuxer skipped damaged
            // data (FLAC frames that fail their CRC, lost Ogg pages) to find it.
            if self.pts_in_frames
                && let Ok(start) = u64::try_from(packet.pts.get())
                && start > self.decoded
            {
                let gap = start - self.decoded;
                self.damaged(
                    &format!("{gap} frames are unreadable (damaged data was skipped)"),
                    gap,
                )?;
                let len = usize::try_from(gap).unwrap_or(usize::MAX).min(1 << 20);
                self.silence(len);
                // The packet itself comes next time; the gap may take several calls.
                self.held = Some(packet);
                return Ok(true);
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(d) => d,
                Err(SymErr::DecodeError(why)) => {
                    // The packet's stated duration stands in as silence, so what follows
                    // keeps its time.
                    let frames = packet.dur.get();
                    self.damaged(&format!("a packet does not decode ({why})"), frames)?;
                    if frames == 0 {
                        continue;
                    }
                    let len = usize::try_from(frames).unwrap_or(usize::MAX).min(1 << 20);
                    self.silence(len);
                    return Ok(true);
                }
                Err(e) => {
                    return Err(
                        Error::format(format!("Cannot decode '{}': {e}", self.shown))
                            .with_parameter_name(&self.shown),
                    );
                }
            };
            let frames = decoded.frames();
            if decoded.num_planes() != self.channels {
                return Err(Error::format(format!(
                    "Input '{}' changes its channel count mid-stream",
                    self.shown
                ))
                .with_parameter_name(&self.shown));
            }
            for p in &mut self.pending {
                p.resize(frames, 0.0);
            }
            decoded.copy_to_slice_planar::<f32, _>(&mut self.pending);
            self.pending_pos = 0;
            self.decoded += frames as u64;
            if frames > 0 {
                return Ok(true);
            }
        }
    }

    pub(super) fn read(&mut self, planar: &mut [Vec<f32>], max: usize) -> Result<(usize, u64)> {
        let mut n = 0;
        let mut nonfinite = 0u64;
        while n < max && !self.done {
            let have = self.pending.first().map_or(0, Vec::len) - self.pending_pos;
            if have == 0 {
                if !self.decode_next()? {
                    self.done = true;
                }
                continue;
            }
            let take = have.min(max - n);
            for (out, src) in planar.iter_mut().zip(&self.pending) {
                for (o, &s) in out[n..n + take]
                    .iter_mut()
                    .zip(&src[self.pending_pos..self.pending_pos + take])
                {
                    let ok = s.is_finite();
                    nonfinite += u64::from(!ok);
                    *o = if ok { s } else { 0.0 };
                }
            }
            self.pending_pos += take;
            n += take;
        }
        Ok((n, nonfinite))
    }
}

/// The title, artist, album and comment of the newest metadata a format reader has (media
/// level, else the first track's).
fn read_tags(reader: &mut dyn symphonia::core::formats::FormatReader) -> super::Tags {
    use symphonia::core::meta::StandardTag;
    let mut tags = super::Tags::default();
    let mut metadata = reader.metadata();
    let Some(revision) = metadata.skip_to_latest() else {
        return tags;
    };
    let all = revision.media.tags.iter().chain(
        revision
            .per_track
            .iter()
            .flat_map(|t| t.metadata.tags.iter()),
    );
    for tag in all {
        let (slot, value) = match &tag.std {
            Some(StandardTag::TrackTitle(v)) => (&mut tags.title, v),
            Some(StandardTag::Artist(v)) => (&mut tags.artist, v),
            Some(StandardTag::Album(v)) => (&mut tags.album, v),
            // Vorbis comments often carry the comment as DESCRIPTION (ffmpeg writes it so).
            Some(StandardTag::Comment(v) | StandardTag::Description(v)) => (&mut tags.comment, v),
            _ => continue,
        };
        if slot.is_none() && !value.trim().is_empty() {
            *slot = Some(value.to_string());
        }
    }
    tags
}
