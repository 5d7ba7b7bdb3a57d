//! `rtfx render --manifest`: JSON Lines and CSV manifests give the same bytes as rendering each
//! item by hand; a malformed line or a bad item stops everything before anything renders,
//! named by its line; `--check` renders nothing; shards (`I/N`, `slurm`, `k8s`) split the
//! manifest into disjoint parts whose union is the whole.

mod common;

use std::path::Path;

use common::{assert_no_temp_files, listing, rtfx, write_float_wav};

fn tone(frames: usize, freq: f32, rate: f32) -> Vec<f32> {
    (0..frames)
        .map(|n| 0.3 * (std::f32::consts::TAU * freq * n as f32 / rate).sin())
        .collect()
}

/// Seven short mono clips in `dir/in`.
fn clips(dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    (0..7)
        .map(|i| {
            let name = format!("in/clip{i}.wav");
            write_float_wav(
                &dir.join(&name),
                16_000,
                &[tone(1600 + 17 * i, 200.0 + 50.0 * i as f32, 16_000.0)],
            );
            name
        })
        .collect()
}

/// `items.jsonl` in `dir`: clip i of `names` rendered to `out/i.wav`.
fn numbered_manifest(dir: &Path, names: &[String]) {
    let lines: String = names
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{{\"input\": \"{name}\", \"output\": \"out/{i}.wav\"}}\n"))
        .collect();
    std::fs::write(dir.join("items.jsonl"), lines).unwrap();
}

/// Each line of `text` as JSON.
fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rtfx_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> common::Run {
    let out = assert_cmd::Command::new(common::rtfx_bin())
        .current_dir(dir)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn jsonl_and_csv_manifests_render_what_each_item_renders_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = clips(d);
    // The manifest sits in a folder of its own: its relative paths resolve against it.
    std::fs::create_dir_all(d.join("m")).unwrap();
    let jsonl = format!(
        "{{\"input\": \"../{}\", \"output\": \"out-j/a/one.wav\"}}\n\
         \n\
         {{\"input\": \"../{}\", \"output\": \"out-j/b/two.wav\", \"seed\": 42, \"effects\": [\"gain:0.5\"]}}\n\
         {{\"input\": \"../{}\", \"output\": \"out-j/three.flac\", \"preset\": \"Telephone (lo-fi)\"}}\n",
        names[0], names[1], names[2]
    );
    std::fs::write(d.join("m/items.jsonl"), jsonl).unwrap();
    let csv = format!(
        "input,output,seed,effects,preset\n\
         ../{},out-c/a/one.wav,,,\n\
         # a comment line\n\
         ../{},out-c/b/two.wav,42,gain:0.5,\n\
         ../{},out-c/three.flac,,,Telephone (lo-fi)\n",
        names[0], names[1], names[2]
    );
    std::fs::write(d.join("m/items.csv"), csv).unwrap();
    let base = ["-e", "hibutterworth:100,order=2", "--subtype", "pcm16"];
    for manifest in ["m/items.jsonl", "m/items.csv"] {
        let r = rtfx(
            d,
            &[&["render", "--manifest", manifest][..], &base].concat(),
        );
        assert_eq!(r.code, 0, "{manifest}: {}", r.stderr);
        assert!(r.stderr.contains("3 of 3 files rendered"), "{}", r.stderr);
    }
    // By hand: the command's chain plus the item's effects; the item's seed seeds the dither;
    // an item's preset replaces the command's chain file (its -e effects still follow).
    let by_hand: [(&str, &[&str]); 3] = [
        (
            "one.wav",
            &["-e", "hibutterworth:100,order=2", "--subtype", "pcm16"],
        ),
        (
            "two.wav",
            &[
                "-e",
                "hibutterworth:100,order=2",
                "-e",
                "gain:0.5",
                "--subtype",
                "pcm16",
                "--seed",
                "42",
            ],
        ),
        (
            "three.flac",
            &[
                "-p",
                "Telephone (lo-fi)",
                "-e",
                "hibutterworth:100,order=2",
                "--subtype",
                "pcm16",
            ],
        ),
    ];
    for ((name, args), input) in by_hand.iter().zip(&names) {
        let r = rtfx(d, &[&["render", input.as_str(), name][..], args].concat());
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
    }
    for (name, sub) in [("one.wav", "a/"), ("two.wav", "b/"), ("three.flac", "")] {
        let want = read(&d.join(name));
        assert_eq!(
            read(&d.join(format!("m/out-j/{sub}{name}"))),
            want,
            "{name} (jsonl)"
        );
        assert_eq!(
            read(&d.join(format!("m/out-c/{sub}{name}"))),
            want,
            "{name} (csv)"
        );
    }
    // The seed matters: without it the dither, and so the bytes, differ.
    assert_ne!(read(&d.join("two.wav")), {
        let r = rtfx(
            d,
            &[
                "render",
                &names[1],
                "unseeded.wav",
                "-e",
                "hibutterworth:100,order=2",
                "-e",
                "gain:0.5",
                "--subtype",
                "pcm16",
            ],
        );
        assert_eq!(r.code, 0);
        read(&d.join("unseeded.wav"))
    });
    assert_no_temp_files(&d.join("m/out-j"));
}

#[test]
fn a_bad_line_stops_everything_before_anything_renders() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = clips(d);
    let good = |i: usize| {
        format!(
            "{{\"input\": \"{}\", \"output\": \"out/{i}.wav\"}}\n",
            names[i]
        )
    };
    for (third_line, says) in [
        ("{\"input\": \"in/clip2.wav\", \"output\": \"out/2.wav\",}\n".to_string(), "line 3: is not valid JSON"),
        ("{\"input\": \"in/nope.wav\", \"output\": \"out/2.wav\"}\n".to_string(), "manifest line 3"),
        ("{\"input\": \"in/clip2.wav\", \"output\": \"out/2.mp4\"}\n".to_string(), "unsupported extension '.mp4'"),
        ("{\"input\": \"in/clip2.wav\", \"output\": \"out/0.wav\"}\n".to_string(), "manifest lines 1 and 3 both write"),
        ("{\"input\": \"in/clip2.wav\", \"output\": \"out/2.wav\", \"effects\": [\"lowpas:100\"]}\n".to_string(), "lowpass"),
        ("{\"input\": \"in/clip2.wav\"}\n".to_string(), "has no output"),
    ] {
        let text = format!("{}{}{third_line}{}", good(0), good(1), good(3));
        std::fs::write(d.join("m.jsonl"), text).unwrap();
        let r = rtfx(d, &["render", "--manifest", "m.jsonl", "-e", "gain:0.5"]);
        assert_eq!(r.code, 2, "{third_line}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{third_line}: {}", r.stderr);
        assert!(!d.join("out").exists(), "{third_line}: something was rendered");
    }
    // Lines are checked in parallel batches, yet the first bad line in the file is the one
    // named, whatever the thread that found it and whatever comes after it.
    let long = |bad: &[(usize, &str)]| -> String {
        (1..=5000)
            .map(|line| match bad.iter().find(|(at, _)| *at == line) {
                Some((_, text)) => format!("{text}\n"),
                None => format!(
                    "{{\"input\": \"{}\", \"output\": \"out/{line}.wav\"}}\n",
                    names[line % names.len()]
                ),
            })
            .collect()
    };
    let missing = "{\"input\": \"in/nope.wav\", \"output\": \"out/x.wav\"}";
    let broken = "{\"input\": ";
    for (bad, says) in [
        (
            vec![(4150, missing), (4900, missing), (4950, broken)],
            "manifest line 4150",
        ),
        (vec![(4200, missing), (4201, broken)], "manifest line 4200"),
        (
            vec![(4097, broken), (4098, missing)],
            "line 4097: is not valid JSON",
        ),
        (vec![(5000, missing)], "manifest line 5000"),
    ] {
        std::fs::write(d.join("long.jsonl"), long(&bad)).unwrap();
        for jobs in ["1", "3"] {
            let r = rtfx(
                d,
                &[
                    "render",
                    "--manifest",
                    "long.jsonl",
                    "-e",
                    "gain:0.5",
                    "--jobs",
                    jobs,
                ],
            );
            assert_eq!(r.code, 2, "{says}, --jobs {jobs}: {}", r.stderr);
            assert!(
                r.stderr.contains(says),
                "{says}, --jobs {jobs}: {}",
                r.stderr
            );
            assert!(!d.join("out").exists(), "{says}: something was rendered");
        }
    }
    std::fs::write(d.join("long.jsonl"), long(&[])).unwrap();
    let r = rtfx(
        d,
        &[
            "render",
            "--manifest",
            "long.jsonl",
            "-e",
            "gain:0.5",
            "--jobs",
            "2",
            "--check",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("5000 items"), "{}", r.stderr);

    // --check renders nothing and says what it found.
    let text = format!("{}{}{}", good(0), good(1), good(3));
    std::fs::write(d.join("m.jsonl"), text).unwrap();
    let r = rtfx(
        d,
        &[
            "render",
            "--manifest",
            "m.jsonl",
            "-e",
            "gain:0.5",
            "--check",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("3 items") && r.stderr.contains("nothing rendered"),
        "{}",
        r.stderr
    );
    assert!(!d.join("out").exists());
    // Outputs without a name go to --output-dir under the input's name.
    std::fs::write(
        d.join("n.jsonl"),
        format!("{{\"input\": \"{}\"}}\n", names[4]),
    )
    .unwrap();
    let r = rtfx(
        d,
        &[
            "render",
            "--manifest",
            "n.jsonl",
            "-O",
            "named",
            "-e",
            "gain:0.5",
            "--format",
            "flac",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(d.join("named/clip4.flac").is_file());
}

#[test]
fn shards_split_the_manifest_into_disjoint_parts_whose_union_is_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = clips(d);
    let text: String = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{{\"input\": \"{n}\", \"output\": \"OUT/{i}.wav\"}}\n"))
        .collect();
    for (tag, env, shard) in [
        ("all", vec![], vec![]),
        ("s0", vec![], vec!["--shard", "0/3"]),
        ("s1", vec![], vec!["--shard", "1/3"]),
        ("s2", vec![], vec!["--shard", "2/3"]),
        (
            "slurm1",
            vec![
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
            ],
            vec!["--shard", "slurm"],
        ),
        (
            "k8s2",
            vec![("JOB_COMPLETION_INDEX", "2")],
            vec!["--shard", "k8s", "--shard-count", "3"],
        ),
    ] {
        std::fs::write(d.join(format!("{tag}.jsonl")), text.replace("OUT", tag)).unwrap();
        let manifest = format!("{tag}.jsonl");
        let r = rtfx_env(
            d,
            &env,
            &[
                &["render", "--manifest", manifest.as_str(), "-e", "gain:0.5"][..],
                &shard,
            ]
            .concat(),
        );
        assert_eq!(r.code, 0, "{tag}: {}", r.stderr);
    }
    let listing = |tag: &str| listing(&d.join(tag));
    // Item n goes to shard n mod 3.
    assert_eq!(listing("s0"), ["0.wav", "3.wav", "6.wav"]);
    assert_eq!(listing("s1"), ["1.wav", "4.wav"]);
    assert_eq!(listing("s2"), ["2.wav", "5.wav"]);
    assert_eq!(listing("slurm1"), listing("s1"));
    assert_eq!(listing("k8s2"), listing("s2"));
    for i in 0..7 {
        let name = format!("{i}.wav");
        let shard = format!("s{}", i % 3);
        assert_eq!(
            read(&d.join(&shard).join(&name)),
            read(&d.join("all").join(&name)),
            "{name}"
        );
    }
    // A shard that cannot be: named, with the fix.
    let r = rtfx(
        d,
        &[
            "render",
            "--manifest",
            "all.jsonl",
            "-e",
            "gain:0.5",
            "--shard",
            "3/3",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("numbered 0 to N-1"), "{}", r.stderr);
    let r = rtfx_env(
        d,
        &[],
        &[
            "render",
            "--manifest",
            "all.jsonl",
            "-e",
            "gain:0.5",
            "--shard",
            "slurm",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("SLURM_ARRAY_TASK_ID is not set"),
        "{}",
        r.stderr
    );
}

/// `sha256sum`'s digest of a file (an implementation independent of rtfx's).
fn sha256sum(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn each_item_gets_a_provenance_record_that_reproduces_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = clips(d);
    let text: String = names[..3]
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{{\"input\": \"{n}\", \"output\": \"out/{i}.wav\", \"key\": \"item-{i}\", \"seed\": {}}}\n", 100 + i))
        .collect();
    std::fs::write(d.join("m.jsonl"), text).unwrap();
    let r = rtfx(
        d,
        &[
            "render",
            "--manifest",
            "m.jsonl",
            "-e",
            "lobutterworth:3000,order=4",
            "-e",
            "gain:0.8",
            "--subtype",
            "pcm16",
            "--log",
            "logs",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let log = std::fs::read_to_string(d.join("logs/render.jsonl")).unwrap();
    let records = json_lines(&log);
    assert_eq!(records.len(), 3);
    for record in &records {
        let key = record["key"].as_str().unwrap();
        let i: usize = key.trim_start_matches("item-").parse().unwrap();
        let output = d.join(record["output"].as_str().unwrap());
        assert_eq!(
            record["sha256"].as_str().unwrap(),
            sha256sum(&output),
            "{key}"
        );
        assert_eq!(record["seed"].as_u64(), Some(100 + i as u64));
        assert_eq!(record["output_rate"].as_u64(), Some(16_000));
        assert_eq!(record["input_frames"].as_u64(), Some(1600 + 17 * i as u64));
        assert_eq!(record["output_frames"].as_u64(), Some(1600 + 17 * i as u64));
        assert_eq!(record["rtfx"].as_str(), Some(env!("CARGO_PKG_VERSION")));
        // By hand from the record: its chain and seed give the same bytes.
        let mut args = vec![
            "render".to_string(),
            names[i].clone(),
            format!("again{i}.wav"),
            "--subtype".into(),
            "pcm16".into(),
            "--seed".into(),
            record["seed"].to_string(),
        ];
        for spec in record["chain"].as_array().unwrap() {
            args.push("-e".into());
            args.push(spec.as_str().unwrap().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let again = rtfx(d, &args);
        assert_eq!(again.code, 0, "{}", again.stderr);
        assert_eq!(
            read(&d.join(format!("again{i}.wav"))),
            read(&output),
            "{key}"
        );
    }
}

#[test]
fn a_killed_run_resumes_to_exactly_the_clean_outputs_and_a_second_run_renders_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("in")).unwrap();
    // Twelve 8-second stereo items: long enough that a kill lands inside one.
    let mut text = String::new();
    for i in 0..12 {
        let l = tone(8 * 48_000, 100.0 + 30.0 * i as f32, 48_000.0);
        let r = tone(8 * 48_000, 150.0 + 20.0 * i as f32, 48_000.0);
        write_float_wav(&d.join(format!("in/{i}.wav")), 48_000, &[l, r]);
        text.push_str(&format!(
            "{{\"input\": \"in/{i}.wav\", \"output\": \"OUT/{i}.flac\"}}\n"
        ));
    }
    std::fs::write(d.join("clean.jsonl"), text.replace("OUT", "clean")).unwrap();
    std::fs::write(d.join("killed.jsonl"), text.replace("OUT", "killed")).unwrap();
    let chain = [
        "-e",
        "reverb:room_size=0.6",
        "-e",
        "lobutterworth:6000,order=4",
        "--jobs",
        "1",
    ];
    let r = rtfx(
        d,
        &[
            &["render", "--manifest", "clean.jsonl", "--log", "clean-log"][..],
            &chain,
        ]
        .concat(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);

    // SIGKILL part-way, then resume.
    let mut child = std::process::Command::new(common::rtfx_bin())
        .current_dir(d)
        .args(
            [
                &[
                    "render",
                    "--manifest",
                    "killed.jsonl",
                    "--log",
                    "killed-log",
                    "-q",
                ][..],
                &chain,
            ]
            .concat(),
        )
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill once a few outputs exist (or after 20 s at the latest).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline
        && std::fs::read_dir(d.join("killed"))
            .map(|r| r.count())
            .unwrap_or(0)
            < 4
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let resume = || {
        rtfx(
            d,
            &[
                &[
                    "render",
                    "--manifest",
                    "killed.jsonl",
                    "--log",
                    "killed-log",
                    "--resume",
                ][..],
                &chain,
            ]
            .concat(),
        )
    };
    let finished_before = std::fs::read_dir(d.join("killed"))
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    assert!(
        finished_before < 12,
        "the run finished before it could be killed"
    );

    let r = resume();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("already done (--resume)"), "{}", r.stderr);
    let listing = |sub: &str| listing(&d.join(sub));
    assert_eq!(
        listing("killed"),
        listing("clean"),
        "the same files, and no temporaries"
    );
    for name in listing("clean") {
        assert_eq!(
            read(&d.join("killed").join(&name)),
            read(&d.join("clean").join(&name)),
            "{name}"
        );
    }
    // One record per item across the runs' log, and a second resume renders nothing.
    let r = resume();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("0 of 12 files rendered") && r.stderr.contains("12 already done"),
        "{}",
        r.stderr
    );
}

/// An item's own `seed` seeds its draw (with its key), as `--seed` does for the other items:
/// the same values, and with the same dither seed the same bytes.
#[test]
fn an_items_own_seed_draws_as_the_command_seed_would() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = clips(d);
    let render = |tag: &str, item_seed: &str, seed: &str| -> Vec<String> {
        let manifest = format!("{tag}.jsonl");
        std::fs::write(
            d.join(&manifest),
            format!(
                "{{\"input\": \"{}\", \"output\": \"{tag}.wav\", \"key\": \"k\"{item_seed}}}\n",
                names[0]
            ),
        )
        .unwrap();
        let log = format!("log-{tag}");
        let r = rtfx(
            d,
            &[
                "render",
                "--manifest",
                manifest.as_str(),
                "--log",
                log.as_str(),
                "--seed",
                seed,
                "-e",
                "lobutterworth:cutoff=loguniform(500,6000)",
                "-e",
                "gain:uniform(0.3,0.9)",
                "--subtype",
                "pcm16",
            ],
        );
        assert_eq!(r.code, 0, "{tag}: {}", r.stderr);
        let record = std::fs::read_to_string(d.join(log).join("render.jsonl")).unwrap();
        let record: serde_json::Value = serde_json::from_str(record.trim()).unwrap();
        record["chain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let own = render("own", ", \"seed\": 7", "1");
    assert_eq!(own, render("command", "", "7"));
    assert_eq!(read(&d.join("own.wav")), read(&d.join("command.wav")));
    assert_ne!(
        own,
        render("other", "", "1"),
        "the item's seed was not used"
    );
}

#[test]
fn drawn_values_depend_on_seed_and_key_only_not_on_shard_order_or_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = clips(d);
    let text: String = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{{\"input\": \"{n}\", \"output\": \"OUT/{i}.wav\"}}\n"))
        .collect();
    let chain = [
        "-e",
        "lobutterworth:cutoff=loguniform(500,6000),order=choice(2,4)",
        "-e",
        "gain:uniform(0.3,0.9)",
        "-e",
        "reverb:room_size=uniform(0.1,0.9),p=0.5",
        "--seed",
        "11",
    ];
    for (tag, extra) in [
        ("one", vec!["--jobs", "1"]),
        ("two", vec!["--jobs", "2"]),
        ("sa", vec!["--shard", "0/2"]),
        ("sb", vec!["--shard", "1/2"]),
    ] {
        let manifest = format!("{tag}.jsonl");
        let out = if tag.starts_with('s') { "sharded" } else { tag };
        std::fs::write(d.join(&manifest), text.replace("OUT", out)).unwrap();
        let log = format!("log-{tag}");
        let r = rtfx(
            d,
            &[
                &[
                    "render",
                    "--manifest",
                    manifest.as_str(),
                    "--log",
                    log.as_str(),
                ][..],
                &chain,
                &extra,
            ]
            .concat(),
        );
        assert_eq!(r.code, 0, "{tag}: {}", r.stderr);
    }
    let mut chains = std::collections::HashSet::new();
    for i in 0..7 {
        let name = format!("{i}.wav");
        let one = read(&d.join("one").join(&name));
        assert_eq!(
            read(&d.join("two").join(&name)),
            one,
            "{name}: --jobs changed it"
        );
        assert_eq!(
            read(&d.join("sharded").join(&name)),
            one,
            "{name}: sharding changed it"
        );
    }
    // Each item drew its own values, and the records hold them as plain numbers.
    for line in std::fs::read_to_string(d.join("log-one/render.jsonl"))
        .unwrap()
        .lines()
    {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let chain: Vec<String> = record["chain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        assert!(chain.iter().all(|s| !s.contains('(')), "{chain:?}");
        chains.insert(chain);
    }
    assert_eq!(chains.len(), 7, "items drew the same values");
    // Another seed draws other values.
    std::fs::write(d.join("other.jsonl"), text.replace("OUT", "other")).unwrap();
    let mut other = chain.to_vec();
    other[7] = "12";
    let r = rtfx(
        d,
        &[&["render", "--manifest", "other.jsonl"][..], &other].concat(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_ne!(read(&d.join("other/0.wav")), read(&d.join("one/0.wav")));
    // A bad distribution names the parameter, before anything renders.
    let r = rtfx(
        d,
        &[
            "render",
            "--manifest",
            "one.jsonl",
            "-e",
            "reverb:room_size=uniform(0.5,3)",
            "--force",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("room_size") && r.stderr.contains("[0, 1]"),
        "{}",
        r.stderr
    );
}

#[cfg(target_os = "linux")]
#[test]
fn checking_a_million_line_manifest_takes_flat_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_float_wav(&d.join("a.wav"), 8000, &[tone(80, 100.0, 8000.0)]);
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(d.join("big.jsonl")).unwrap());
        for i in 0..1_000_000 {
            writeln!(f, "{{\"input\": \"a.wav\", \"output\": \"out/{i}.wav\"}}").unwrap();
        }
    }
    let mut child = std::process::Command::new(common::rtfx_bin())
        .current_dir(d)
        .args([
            "render",
            "--manifest",
            "big.jsonl",
            "-e",
            "gain:0.5",
            "--check",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its own peak resident set (VmHWM only grows), read until it exits.
    let mut peak_kib = 0.0f64;
    while child.try_wait().unwrap().is_none() {
        peak_kib = peak_kib.max(common::peak_rss_kib(child.id()).unwrap_or(0.0));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("1000000 items"), "{stderr}");
    // 16 MiB of filter and the program itself; keeping every output (a 1-million-entry map)
    // would add about 40 MiB more.
    assert!(
        peak_kib / 1024.0 < 40.0,
        "peak {:.1} MiB",
        peak_kib / 1024.0
    );
    assert!(!d.join("out").exists());
}

#[test]
fn a_chain_file_may_hold_distributions_as_strings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = clips(d);
    std::fs::write(
        d.join("aug.toml"),
        "[[effects]]\nname = \"lobutterworth\"\ncutoff = \"loguniform(500,6000)\"\norder = 4\n\n\
         [[effects]]\nname = \"reverb\"\nroom_size = \"uniform(0.1,0.9)\"\np = 0.5\n",
    )
    .unwrap();
    let text: String = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{{\"input\": \"{n}\", \"output\": \"OUT/{i}.wav\"}}\n"))
        .collect();
    std::fs::write(d.join("toml.jsonl"), text.replace("OUT", "toml")).unwrap();
    std::fs::write(d.join("grammar.jsonl"), text.replace("OUT", "grammar")).unwrap();
    let r = rtfx(
        d,
        &[
            "render",
            "--manifest",
            "toml.jsonl",
            "--chain",
            "aug.toml",
            "--seed",
            "3",
            "--log",
            "lt",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = rtfx(
        d,
        &[
            "render",
            "--manifest",
            "grammar.jsonl",
            "-e",
            "lobutterworth:cutoff=loguniform(500,6000),order=4",
            "-e",
            "reverb:room_size=uniform(0.1,0.9),p=0.5",
            "--seed",
            "3",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    for i in 0..7 {
        let name = format!("{i}.wav");
        assert_eq!(
            read(&d.join("toml").join(&name)),
            read(&d.join("grammar").join(&name)),
            "{name}"
        );
    }
    // Values were drawn per item: the cutoffs differ.
    let log = std::fs::read_to_string(d.join("lt/render.jsonl")).unwrap();
    let cutoffs: std::collections::HashSet<&str> = log
        .lines()
        .filter_map(|l| l.split("cutoff=").nth(1))
        .map(|c| c.split(',').next().unwrap())
        .collect();
    assert_eq!(cutoffs.len(), 7, "{log}");
    // A bad distribution in the file names the parameter.
    std::fs::write(
        d.join("bad.toml"),
        "[[effects]]\nname = \"reverb\"\nroom_size = \"uniform(0.5,3)\"\n",
    )
    .unwrap();
    let r = rtfx(
        d,
        &[
            "render",
            "--manifest",
            "toml.jsonl",
            "--chain",
            "bad.toml",
            "--force",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("room_size"), "{}", r.stderr);
}

#[test]
fn a_shard_resumes_from_its_own_log_and_says_when_the_shard_count_changed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    numbered_manifest(d, &clips(d));
    let run = |shard: &str| {
        rtfx(
            d,
            &[
                "render",
                "--manifest",
                "items.jsonl",
                "--shard",
                shard,
                "--log",
                "logs",
                "--resume",
                "-e",
                "gain:uniform(0.5,1.0)",
                "--seed",
                "3",
            ],
        )
    };
    // Items 0, 2, 4, 6 are shard 0 of 2.
    let r = run("0/2");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("4 of 4 files rendered"), "{}", r.stderr);
    let r = run("0/2");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("0 of 4 files rendered"), "{}", r.stderr);
    assert!(
        r.stderr.contains("4 already done (--resume)"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("note:"), "{}", r.stderr);
    // Another shard count: shard 0 of 3 (items 0, 3, 6) reads its own, new log, and says
    // why items 0 and 6, rendered before, render again (to the same bytes).
    let before = read(&d.join("out/6.wav"));
    let r = run("0/3");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("3 of 3 files rendered"), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "note: a shard resumes from its own log 'logs/shard-0-of-3.jsonl', which holds no records yet"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(read(&d.join("out/6.wav")), before);
    assert_eq!(
        listing(&d.join("logs")),
        ["shard-0-of-2.jsonl", "shard-0-of-3.jsonl"]
    );
}

#[test]
fn jobs_auto_takes_the_cores_this_process_may_use_and_zero_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = clips(d);
    let lines: String = names
        .iter()
        .map(|name| format!("{{\"input\": \"{name}\"}}\n"))
        .collect();
    std::fs::write(d.join("items.jsonl"), lines).unwrap();
    let run = |jobs: &str, out: &str| {
        rtfx(
            d,
            &[
                "render",
                "--manifest",
                "items.jsonl",
                "-O",
                out,
                "--jobs",
                jobs,
                "-e",
                "gain:uniform(0.5,1.0)",
            ],
        )
    };
    for (jobs, out) in [("auto", "auto"), ("1", "one")] {
        let r = run(jobs, out);
        assert_eq!(r.code, 0, "--jobs {jobs}: {}", r.stderr);
        assert!(r.stderr.contains("7 of 7 files rendered"), "{}", r.stderr);
    }
    assert_eq!(listing(&d.join("auto")), listing(&d.join("one")));
    for name in listing(&d.join("one")) {
        assert_eq!(
            read(&d.join("auto").join(&name)),
            read(&d.join("one").join(&name))
        );
    }
    for (jobs, says) in [
        ("0", "must be at least 1, or auto"),
        ("some", "a number of files at once, or auto"),
    ] {
        let r = run(jobs, "never");
        assert_eq!(r.code, 2, "--jobs {jobs}: {}", r.stderr);
        assert!(r.stderr.contains(says), "--jobs {jobs}: {}", r.stderr);
        assert!(!d.join("never").exists());
    }
}

#[test]
fn merging_a_log_folder_gives_one_record_per_output_matching_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    numbered_manifest(d, &clips(d));
    let run = |shard: &str| {
        let r = rtfx(
            d,
            &[
                "render",
                "--manifest",
                "items.jsonl",
                "--shard",
                shard,
                "--log",
                "logs",
                "--resume",
                "-e",
                "gain:uniform(0.5,1.0)",
            ],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
    };
    run("0/2");
    run("1/2");
    // A damaged output renders again on resume: its shard's log gains a second record.
    std::fs::write(d.join("out/3.wav"), b"damaged").unwrap();
    run("1/2");
    let logged: usize = listing(&d.join("logs"))
        .iter()
        .map(|log| {
            std::fs::read_to_string(d.join("logs").join(log))
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    assert_eq!(logged, 8);
    let r = rtfx(d, &["manifest", "merge", "logs"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let records = json_lines(&r.stdout);
    let mut outputs: Vec<String> = records
        .iter()
        .map(|rec| rec["output"].as_str().unwrap().to_string())
        .collect();
    outputs.sort();
    outputs.dedup();
    assert_eq!(outputs.len(), 7, "{}", r.stdout);
    assert_eq!(records.len(), 7);
    for rec in &records {
        let output = d.join(rec["output"].as_str().unwrap());
        assert_eq!(rec["sha256"].as_str().unwrap(), sha256sum(&output));
    }
    assert!(
        r.stderr
            .contains("7 records, one per output, from 2 logs in 'logs' (1 earlier records"),
        "{}",
        r.stderr
    );
    let r = rtfx(d, &["manifest", "merge", "no-such-folder"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("Cannot read log folder 'no-such-folder'"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_items_params_override_its_chain_as_a_spec_would() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = clips(d);
    let lines = format!(
        "{{\"input\": \"{}\", \"output\": \"out/0.wav\", \"params\": {{\"0.cutoff\": 150}}}}\n\
         {{\"input\": \"{}\", \"output\": \"out/1.wav\", \"params\": {{\"1.gain\": \"choice(0.25)\"}}, \"effects\": [\"lobutterworth:3000\"]}}\n\
         {{\"input\": \"{}\", \"output\": \"out/2.wav\", \"preset\": \"Telephone (lo-fi)\", \"params\": {{\"2.cutoff\": 3000}}}}\n",
        names[0], names[1], names[2]
    );
    std::fs::write(d.join("items.jsonl"), lines).unwrap();
    let chain = [
        "-e",
        "hibutterworth:cutoff=loguniform(60,200),order=2",
        "-e",
        "gain:uniform(0.5,1.0)",
        "--seed",
        "4",
    ];
    let r = rtfx(
        d,
        &[
            &["render", "--manifest", "items.jsonl", "--log", "logs"][..],
            &chain,
        ]
        .concat(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let records = json_lines(&std::fs::read_to_string(d.join("logs/render.jsonl")).unwrap());
    let chain_of = |output: &str| -> Vec<String> {
        let record = records
            .iter()
            .find(|r| r["output"].as_str().unwrap().ends_with(output))
            .unwrap();
        record["chain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    // The override replaces the distribution; the rest is drawn as without it.
    let first = chain_of("out/0.wav");
    assert!(
        first[0].starts_with("hibutterworth:cutoff=150,"),
        "{first:?}"
    );
    assert!(first[1].starts_with("gain:gain=0."), "{first:?}");
    // Index 1 is the command's gain; the item's own effect (index 2) comes after.
    let second = chain_of("out/1.wav");
    assert!(second[1].starts_with("gain:gain=0.25,"), "{second:?}");
    assert!(
        second[2].starts_with("lobutterworth:cutoff=3000,"),
        "{second:?}"
    );
    // A preset's effects are counted too: its third is its low-pass.
    let third = chain_of("out/2.wav");
    assert!(
        third[2].starts_with("lobutterworth:cutoff=3000,"),
        "{third:?}"
    );
    // The first item's bytes are what its overridden chain gives by hand.
    let by_hand = rtfx(
        d,
        &[
            "render",
            &names[0],
            "hand.wav",
            "-e",
            "hibutterworth:cutoff=150,order=2",
            "-e",
            &first[1],
            "--seed",
            "4",
        ],
    );
    assert_eq!(by_hand.code, 0, "{}", by_hand.stderr);
    assert_eq!(read(&d.join("hand.wav")), read(&d.join("out/0.wav")));
    // An index past the chain, or a parameter the effect lacks: a usage error naming the line.
    for (params, says) in [
        (
            "{\"5.cutoff\": 1}",
            "params '5.cutoff': the item's chain has 2 effects (0 to 1)",
        ),
        ("{\"0.cutof\": 1}", "cutof"),
        ("{\"0.cutoff\": 1e9}", "cutoff"),
    ] {
        std::fs::write(
            d.join("bad.jsonl"),
            format!(
                "{{\"input\": \"{}\", \"output\": \"bad/x.wav\"}}\n{{\"input\": \"{}\", \"output\": \"bad/y.wav\", \"params\": {params}}}\n",
                names[0], names[1]
            ),
        )
        .unwrap();
        let r = rtfx(
            d,
            &[&["render", "--manifest", "bad.jsonl"][..], &chain].concat(),
        );
        assert_eq!(r.code, 2, "{params}: {}", r.stderr);
        assert!(
            r.stderr.contains("manifest line 2"),
            "{params}: {}",
            r.stderr
        );
        assert!(r.stderr.contains(says), "{params}: {}", r.stderr);
        assert!(!d.join("bad").exists());
    }
}
