#!/usr/bin/env bash
# Writes the small compressed-format fixtures of tests/data/formats with ffmpeg (Debian
# package): 0.25 s of a 441 Hz sine (lavfi amplitude 1/8, -3 dB per channel when upmixed),
# 44.1 kHz stereo (mono for MP3), so that
# CI can test decoding without ffmpeg. Run again only to change them.
set -euo pipefail
cd "$(dirname "$0")/../tests/data/formats"
src=(-f lavfi -i "sine=frequency=441:sample_rate=44100:duration=0.25")
ffmpeg -v error -y "${src[@]}" -ac 2 -c:a pcm_s16be tone.aiff
ffmpeg -v error -y "${src[@]}" -ac 2 -c:a libvorbis -q:a 4 tone.ogg
ffmpeg -v error -y "${src[@]}" -ac 1 -c:a libmp3lame -b:a 128k tone.mp3
ffmpeg -v error -y "${src[@]}" -ac 2 -c:a flac tone.flac
# 2 s, several Ogg pages: tests/damaged_input.rs cuts off its last page.
ffmpeg -v error -y -f lavfi -i "sine=frequency=441:sample_rate=44100:duration=2" -ac 2 \
  -c:a libvorbis -q:a 4 tone-2s.ogg
ls -l
