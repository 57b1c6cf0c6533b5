//! Integration tests of the evaluation toolkit: metrics on hand-made and synthetic rankings
//! (agreeing with peer_baseline.py's `scores`), ground-truth errors, rankings dumps, distortions
//! and the HTML report. None of them needs ../shared or Python.

use std::fs;
use std::path::Path;

use image::{Rgb, RgbImage};
use lookalike::Error;
use lookalike::eval::distort::{self, Distortion};
use lookalike::eval::metrics::{
    self, EvalConfig, LabelRelevance, Ranking, Relevance, evaluate, knn_recall, rank_by_distance,
};
use lookalike::eval::rankings::{self, DumpSummary, RankingsHeader, RankingsWriter};
use lookalike::eval::report::{self, DistortionPoint, QueryExamples, ReportInput, RunReport};
use lookalike::eval::{GroundTruth, stable_hash};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

// ------------------------------------------------------------------ hand-made rankings

#[test]
fn hand_computed_map_precision_ns() {
    // 6 items, labels A A A B B B (0..=5). Rankings include the query first.
    let rel = LabelRelevance::new(vec![0, 0, 0, 1, 1, 1]);
    let rankings = vec![
        // query 0: after self, pattern 1 0 1 0 0 -> AP = (1 + 2/3) / 2
        Ranking {
            query: 0,
            items: vec![0, 1, 3, 2, 4, 5],
        },
        // query 3: pattern 0 0 0 1 1 -> AP = (1/4 + 2/5) / 2
        Ranking {
            query: 3,
            items: vec![3, 0, 1, 2, 4, 5],
        },
        // query 5: self not at the top; pattern (self skipped) 1 1 0 0 0 -> AP 1
        Ranking {
            query: 5,
            items: vec![4, 5, 3, 0, 1, 2],
        },
    ];
    let cfg = EvalConfig {
        ks: vec![1, 2, 5],
        ns_depth: 4,
        class_k: 2,
    };
    let e = evaluate(&rankings, &rel, &cfg).unwrap();
    let aps = [(1.0 + 2.0 / 3.0) / 2.0, (0.25 + 0.4) / 2.0, 1.0];
    for (m, want) in e.per_query.iter().zip(aps) {
        assert!(
            close(m.ap, want, 1e-12),
            "query {}: {} vs {want}",
            m.query,
            m.ap
        );
    }
    assert!(close(e.summary.map, aps.iter().sum::<f64>() / 3.0, 1e-12));
    // P@1: 1, 0, 1 ; P@2: 1/2, 0, 1 ; P@5: 2/5, 2/5, 2/5
    assert!(close(e.summary.precision_at(1).unwrap(), 2.0 / 3.0, 1e-12));
    assert!(close(e.summary.precision_at(2).unwrap(), 0.5, 1e-12));
    assert!(close(e.summary.precision_at(5).unwrap(), 0.4, 1e-12));
    // R@2: 1/2, 0, 1
    assert!(close(e.summary.recall_at(2).unwrap(), 0.5, 1e-12));
    // N-S (top 4 incl. self): q0 [0,1,3,2] -> 3 ; q3 [3,0,1,2] -> 1 ; q5 [4,5,3,0] -> 3
    assert_eq!(
        e.per_query.iter().map(|m| m.ns).collect::<Vec<_>>(),
        vec![3, 1, 3]
    );
    assert!(close(e.summary.ns_score, 7.0 / 3.0, 1e-12));
    // NDCG@2 of q0: hits at 1 -> 1 / (1 + 1/log2 3)
    let ideal = 1.0 + 1.0 / 3f64.log2();
    assert!(close(e.per_query[0].ndcg[1].value, 1.0 / ideal, 1e-12));
    // per class: "0" has q0 only, "1" has q3 and q5
    assert_eq!(e.summary.per_class.len(), 2);
    assert!(close(
        e.summary.per_class[1].map,
        (aps[1] + aps[2]) / 2.0,
        1e-12
    ));
    assert!(close(e.summary.per_class[1].precision, 0.5, 1e-12));
}

#[test]
fn ns_treats_a_missing_query_as_first() {
    let rel = LabelRelevance::new(vec![0, 0, 0, 0, 1]);
    let with_self = Ranking {
        query: 0,
        items: vec![0, 1, 4, 2, 3],
    };
    let without = Ranking {
        query: 0,
        items: vec![1, 4, 2, 3],
    };
    let cfg = EvalConfig::default();
    let a = metrics::query_metrics(&with_self, &rel, &cfg);
    let b = metrics::query_metrics(&without, &rel, &cfg);
    assert_eq!(a.ns, 3);
    assert_eq!(b.ns, 3);
    assert_eq!(a.ap, b.ap);
}

#[test]
fn truncated_rankings_and_distractors() {
    let rel = LabelRelevance::new(vec![0, 0, 0, 1]);
    // item 9 is a distractor (beyond the labels): never relevant
    let r = Ranking {
        query: 0,
        items: vec![9, 1],
    };
    let m = metrics::query_metrics(&r, &rel, &EvalConfig::default());
    assert!(close(m.ap, 0.5 / 2.0, 1e-12)); // hit at rank 2, one of two relevant never retrieved
    assert_eq!(m.first_hit, Some(2));
    assert!(close(m.precision[2].value, 0.1, 1e-12)); // P@10 divides by 10
    assert!(close(m.recall[2].value, 0.5, 1e-12));
}

#[test]
fn knn_recall_against_exact() {
    let exact = vec![vec![0, 1, 2, 3], vec![1, 0, 3, 2]];
    let approx = vec![vec![0, 2, 1, 9], vec![1, 3, 8, 7]];
    assert!(close(knn_recall(&approx, &exact, 1).unwrap(), 1.0, 1e-12));
    assert!(close(
        knn_recall(&approx, &exact, 2).unwrap(),
        (0.5 + 0.5) / 2.0,
        1e-12
    ));
    assert!(close(
        knn_recall(&approx, &exact, 4).unwrap(),
        (0.75 + 0.5) / 2.0,
        1e-12
    ));
    assert!(matches!(
        knn_recall(&approx, &exact, 0),
        Err(Error::InvalidInput(_))
    ));
}

// ------------------------------------------------------------------ synthetic vs peer_baseline.py

/// Labels i % classes; d[i][j] = u + (0 if same label else 0.35), optionally quantised to 1/8;
/// `u` from SplitMix64, the generator of `scripts/crosscheck_eval.py --synthetic`.
fn synthetic(n: usize, classes: i64, seed: u64, ties: bool) -> (Vec<Vec<f64>>, Vec<i64>) {
    let mut rng = lookalike::rng::SplitMix64::new(seed);
    let labels: Vec<i64> = (0..n as i64).map(|i| i % classes).collect();
    let dist = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    let mut u = rng.uniform();
                    if ties {
                        u = (u * 8.0).floor() / 8.0;
                    }
                    if i == j {
                        0.0
                    } else {
                        u + if labels[i] == labels[j] { 0.0 } else { 0.35 }
                    }
                })
                .collect()
        })
        .collect();
    (dist, labels)
}

/// Expected figures printed by `scripts/crosscheck_eval.py --synthetic --peer
/// ../shared/tools/peer_baseline.py [--ties] [--n N --classes C --seed S]`, i.e. computed by
/// peer_baseline.py's own `scores` on the same matrices.
const PEER_FIGURES: &[(usize, i64, u64, bool, [f64; 3])] = &[
    (
        120,
        12,
        42,
        false,
        [0.5129149002, 0.3866666667, 3.6083333333],
    ),
    (
        120,
        12,
        42,
        true,
        [0.4978365813, 0.3583333333, 3.6500000000],
    ),
    (
        300,
        75,
        7,
        false,
        [0.3969646229, 0.1200000000, 2.1166666667],
    ),
];

#[test]
fn synthetic_rankings_agree_with_peer_scores() {
    for &(n, classes, seed, ties, want) in PEER_FIGURES {
        let (dist, labels) = synthetic(n, classes, seed, ties);
        let rankings: Vec<Ranking> = dist
            .iter()
            .enumerate()
            .map(|(q, row)| Ranking {
                query: q,
                items: rank_by_distance(row),
            })
            .collect();
        let rel = LabelRelevance::new(labels.clone());
        let e = evaluate(&rankings, &rel, &EvalConfig::default()).unwrap();
        let got = [
            e.summary.map,
            e.summary.precision_at(10).unwrap(),
            e.summary.ns_score,
        ];
        for (g, w) in got.iter().zip(want) {
            assert!(close(*g, w, 1e-9), "n={n} ties={ties}: {got:?} vs {want:?}");
        }
        // For scripts/crosscheck_eval.py: LOOKALIKE_XCHECK_DIR=/tmp/x cargo test --test eval_metrics
        if let Some(dir) = std::env::var_os("LOOKALIKE_XCHECK_DIR") {
            dump_synthetic(
                Path::new(&dir),
                n,
                classes,
                seed,
                ties,
                &labels,
                &rankings,
                &e.summary,
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn dump_synthetic(
    dir: &Path,
    n: usize,
    classes: i64,
    seed: u64,
    ties: bool,
    labels: &[i64],
    rankings: &[Ranking],
    summary: &metrics::Summary,
) {
    fs::create_dir_all(dir).unwrap();
    let tag = format!("n{n}_c{classes}_s{seed}{}", if ties { "_ties" } else { "" });
    let gt = dir.join(format!("{tag}_groundtruth.tsv"));
    let names: Vec<String> = (0..n).map(|i| format!("img{i:04}.jpg")).collect();
    let mut tsv = String::from("filename\tlabel\n");
    for (nm, l) in names.iter().zip(labels) {
        tsv.push_str(&format!("{nm}\t{l}\n"));
    }
    fs::write(&gt, tsv).unwrap();
    let mut w = RankingsWriter::create(&dir.join(format!("{tag}.jsonl"))).unwrap();
    w.begin(&RankingsHeader {
        format: rankings::FORMAT_NAME.into(),
        version: rankings::FORMAT_VERSION,
        family: format!("synthetic-{tag}"),
        mode: "exact".into(),
        groundtruth: Some(gt),
        images: None,
    })
    .unwrap();
    for r in rankings {
        let items: Vec<&str> = r.items.iter().map(|&i| names[i].as_str()).collect();
        w.write_names(&names[r.query], &items).unwrap();
    }
    w.write_summary(&DumpSummary::from(summary)).unwrap();
    w.finish().unwrap();
}

// ------------------------------------------------------------------ ground truth files

fn touch(dir: &Path, name: &str) {
    let p = dir.join(name);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, b"not really an image").unwrap();
}

fn gt_error(content: &str) -> (Error, String) {
    let d = tempfile::tempdir().unwrap();
    for n in ["a.jpg", "b.jpg", "c.jpg"] {
        touch(d.path(), n);
    }
    let gt = d.path().join("groundtruth.tsv");
    fs::write(&gt, content).unwrap();
    let e = GroundTruth::from_tsv(&gt, d.path()).unwrap_err();
    let msg = e.to_string();
    (e, msg)
}

#[test]
fn bad_groundtruth_names_file_and_line() {
    let (e, msg) = gt_error("file\tlabel\na.jpg\t1\nb.jpg\tdog\n");
    assert!(matches!(e, Error::Parse { line: 3, .. }), "{e:?}");
    assert!(
        msg.contains("groundtruth.tsv:3:") && msg.contains("not an integer"),
        "{msg}"
    );

    let (e, msg) = gt_error("file\tlabel\na.jpg\t1\nb.jpg 2\n");
    assert!(matches!(e, Error::Parse { line: 3, .. }), "{e:?}");
    assert!(msg.contains("columns") && msg.contains("TAB"), "{msg}");

    let (e, msg) = gt_error("file\tlabel\na.jpg\t1\nb.jpg\t2\na.jpg\t1\n");
    assert!(matches!(e, Error::Parse { line: 4, .. }), "{e:?}");
    assert!(msg.contains("duplicate") && msg.contains("a.jpg"), "{msg}");

    let (_, msg) = gt_error("");
    assert!(
        msg.contains("groundtruth.tsv:1:") && msg.contains("empty"),
        "{msg}"
    );

    let (_, msg) = gt_error("file\tlabel\n\n");
    assert!(msg.contains("no data lines"), "{msg}");

    let (e, msg) = gt_error("file\tlabel\na.jpg\t1\nx.jpg\t1\ny.jpg\t2\n");
    assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    assert!(
        msg.contains("2 of 3") && msg.contains("x.jpg") && msg.contains("y.jpg"),
        "{msg}"
    );
}

#[test]
fn missing_groundtruth_file_is_an_io_error() {
    let d = tempfile::tempdir().unwrap();
    let e = GroundTruth::from_tsv(&d.path().join("absent.tsv"), d.path()).unwrap_err();
    assert!(matches!(e, Error::Io { .. }));
    assert!(e.to_string().contains("absent.tsv"));
    assert!(e.is_user_error());
}

#[test]
fn bad_query_list_lines() {
    let d = tempfile::tempdir().unwrap();
    for n in ["q.jpg", "r.jpg"] {
        touch(d.path(), n);
    }
    let list = d.path().join("queries.tsv");
    for (content, line, want) in [
        ("q.jpg\n", 1, "at least one relevant"),
        ("q.jpg\tr.jpg\nq.jpg\tr.jpg\n", 2, "duplicate query"),
        ("q.jpg\tr.jpg\tr.jpg\n", 1, "listed twice"),
        ("q.jpg\t\tr.jpg\n", 1, "empty"),
    ] {
        fs::write(&list, content).unwrap();
        let e = GroundTruth::from_query_list(&list, d.path()).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, Error::Parse { line: l, .. } if l == line),
            "{msg}"
        );
        assert!(msg.contains("queries.tsv") && msg.contains(want), "{msg}");
    }
}

#[test]
fn folder_classes_drive_metrics() {
    let d = tempfile::tempdir().unwrap();
    for n in [
        "cats/1.jpg",
        "cats/2.jpg",
        "dogs/1.jpg",
        "dogs/2.webp",
        "dogs/readme.md",
    ] {
        touch(d.path(), n);
    }
    let gt = GroundTruth::from_folders(d.path()).unwrap();
    assert_eq!(gt.len(), 4);
    let c1 = gt.id_of("cats/1.jpg").unwrap();
    let c2 = gt.id_of("cats/2.jpg").unwrap();
    let d1 = gt.id_of("dogs/1.jpg").unwrap();
    let d2 = gt.id_of("dogs/2.webp").unwrap();
    let rankings = vec![
        Ranking {
            query: c1,
            items: vec![c1, d1, c2, d2],
        },
        Ranking {
            query: d2,
            items: vec![d2, d1, c1, c2],
        },
    ];
    let e = evaluate(&rankings, &gt, &EvalConfig::default()).unwrap();
    assert!(close(e.summary.map, (0.5 + 1.0) / 2.0, 1e-12));
    let classes: Vec<&str> = e
        .summary
        .per_class
        .iter()
        .map(|c| c.class.as_str())
        .collect();
    assert_eq!(classes, vec!["cats", "dogs"]);
    assert_eq!(gt.num_relevant(c1), 1);
}

// ------------------------------------------------------------------ rankings dump

#[test]
fn rankings_file_round_trips() {
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("images");
    for n in ["a.jpg", "b.jpg", "c d.jpg"] {
        touch(&img, n);
    }
    let gtp = d.path().join("groundtruth.tsv");
    fs::write(&gtp, "file\tlabel\na.jpg\t0\nb.jpg\t0\nc d.jpg\t1\n").unwrap();
    let gt = GroundTruth::from_tsv(&gtp, &img).unwrap();
    let rankings = vec![
        Ranking {
            query: 0,
            items: vec![0, 1, 2],
        },
        Ranking {
            query: 2,
            items: vec![2, 0, 1],
        },
    ];
    let e = evaluate(&rankings, &gt, &EvalConfig::default()).unwrap();
    let path = d.path().join("rankings.jsonl");
    let mut w = RankingsWriter::create(&path).unwrap();
    w.begin(&RankingsHeader::new("color", "exact", &gt))
        .unwrap();
    for r in &rankings {
        w.write_ranking(&gt, r).unwrap();
    }
    w.write_summary(&DumpSummary::from(&e.summary)).unwrap();
    w.finish().unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("\"format\":\"lookalike-rankings\"")
    );
    assert!(text.contains(r#"{"query":"a.jpg","ranking":["a.jpg","b.jpg","c d.jpg"]}"#));
    let secs = rankings::read_rankings(&path).unwrap();
    assert_eq!(secs.len(), 1);
    assert_eq!(secs[0].header.family, "color");
    assert!(
        secs[0]
            .header
            .groundtruth
            .as_ref()
            .unwrap()
            .ends_with("groundtruth.tsv")
    );
    assert_eq!(secs[0].rankings[1].0, "c d.jpg");
    assert_eq!(secs[0].summary.unwrap().map, e.summary.map);

    fs::write(&path, "{\"query\":\"a.jpg\",\"ranking\":[]}\n").unwrap();
    let msg = rankings::read_rankings(&path).unwrap_err().to_string();
    assert!(
        msg.contains("rankings.jsonl:1:") && msg.contains("header"),
        "{msg}"
    );
}

// ------------------------------------------------------------------ distortions

fn tiny_image() -> RgbImage {
    RgbImage::from_fn(40, 30, |x, y| {
        Rgb([
            (x * 6) as u8,
            (y * 8) as u8,
            if (x / 5 + y / 5) % 2 == 0 { 220 } else { 30 },
        ])
    })
}

#[test]
fn default_suite_runs_on_a_tiny_image() {
    let img = tiny_image();
    let suite = distort::default_suite();
    assert!(suite.len() >= 25);
    for d in &suite {
        let out = d.apply(&img, distort::seed_for(1, "tiny.png")).unwrap();
        let (w, h) = out.dimensions();
        match d {
            Distortion::Scale { factor } => {
                assert_eq!(w, (40.0 * factor).round() as u32, "{d}");
                assert_eq!(h, (30.0 * factor).round() as u32, "{d}");
            }
            Distortion::Crop { .. } => assert!(w < 40 && h < 30, "{d}"),
            _ => assert_eq!((w, h), (40, 30), "{d}"),
        }
        assert_ne!(out, img, "{d} changed nothing");
        // deterministic
        assert_eq!(
            out,
            d.apply(&img, distort::seed_for(1, "tiny.png")).unwrap(),
            "{d}"
        );
    }
}

#[test]
fn distortion_specs_parse_and_print() {
    let list = distort::parse_list("blur:2,motion:15,jpeg:30,crop:0.2,scale:0.5,rotate:10,flip,brightness:0.2,contrast:0.7,hue:20,noise:0.05").unwrap();
    let back: Vec<String> = list.iter().map(ToString::to_string).collect();
    assert_eq!(
        back.join(","),
        "blur:2,motion:15,jpeg:30,crop:0.2,scale:0.5,rotate:10,flip,brightness:0.2,contrast:0.7,hue:20,noise:0.05"
    );
    let e = "smear:2".parse::<Distortion>().unwrap_err().to_string();
    assert!(e.contains("smear") && e.contains("blur:SIGMA"), "{e}");
}

/// A list written as --psf or --query-distortion write theirs is refused with what to write.
#[test]
fn distortion_lists_say_how_to_write_a_motion_angle_and_a_chain() {
    let e = distort::parse_list("motion:15,30").unwrap_err().to_string();
    assert!(e.contains("`motion:15:30`"), "{e}");
    let e = distort::parse_list("jpeg:50,blur:2+jpeg:50")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`blur:2,jpeg:50`") && e.contains("--query-distortion"),
        "{e}"
    );
    let e = distort::parse_chain("motion:15,30")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`motion:15:30`"), "{e}");
    assert_eq!(distort::parse_list("motion:15:30,flip").unwrap().len(), 2);
    let e = distort::parse_list("jpeg:50+").unwrap_err().to_string();
    assert!(e.contains("write `jpeg:50` to score"), "{e}");
    let e = distort::parse_list("blur:2,3").unwrap_err().to_string();
    assert!(e.contains("`blur:3`"), "{e}");
}

// ------------------------------------------------------------------ report

#[test]
fn report_writes_html_and_thumbnails() {
    let d = tempfile::tempdir().unwrap();
    let img_dir = d.path().join("images");
    fs::create_dir_all(&img_dir).unwrap();
    let colours = [[200, 30, 30], [190, 40, 40], [30, 30, 200], [40, 40, 190]];
    let mut tsv = String::from("file\tlabel\n");
    for (i, c) in colours.iter().enumerate() {
        let name = format!("im{i}.png");
        RgbImage::from_pixel(64, 48, Rgb(*c))
            .save(img_dir.join(&name))
            .unwrap();
        tsv.push_str(&format!("{name}\t{}\n", i / 2));
    }
    fs::write(img_dir.join("broken.png"), b"nope").unwrap();
    tsv.push_str("broken.png\t2\n");
    let gtp = d.path().join("gt.tsv");
    fs::write(&gtp, tsv).unwrap();
    let gt = GroundTruth::from_tsv(&gtp, &img_dir).unwrap();
    let rankings: Vec<Ranking> = (0..5)
        .map(|q| Ranking {
            query: q,
            items: (0..5).map(|k| (q + k) % 5).collect(),
        })
        .collect();
    let e = evaluate(&rankings, &gt, &EvalConfig::default()).unwrap();
    let ex = QueryExamples::from_evaluation("color", "exact", &gt, &e, &rankings, 2, 3).unwrap();
    assert_eq!(ex.best.len(), 2);
    assert!(ex.best[0].ap >= ex.worst[0].ap);
    let input = ReportInput {
        title: "test report".into(),
        dataset: "four squares".into(),
        runs: vec![RunReport {
            family: "color".into(),
            mode: "exact".into(),
            summary: e.summary.clone(),
            extra: Default::default(),
        }],
        distortion_metric: "mAP".into(),
        distortions: vec![DistortionPoint {
            family: "color".into(),
            mode: "exact".into(),
            distortion: "jpeg:30".parse().unwrap(),
            value: 0.8,
        }],
        examples: vec![ex],
        ..Default::default()
    };
    let out = report::write_report(&d.path().join("report"), &input).unwrap();
    let html = fs::read_to_string(&out.index).unwrap();
    assert!(html.contains("test report") && html.contains("Precision-recall"));
    assert!(html.contains("mAP vs jpeg"));
    assert!(!html.contains("<script"));
    assert!(out.thumbnails >= 4, "{out:?}");
    assert_eq!(out.thumbnail_failures.len(), 1, "{out:?}");
    let thumb = d
        .path()
        .join("report/thumbs")
        .join(report::thumb_name(&gt.path(0)));
    let t = image::open(&thumb).unwrap();
    assert!(t.width() <= report::THUMB_SIZE && t.height() <= report::THUMB_SIZE);
    assert!(html.contains(&report::thumb_name(&gt.path(0))));
    assert!(d.path().join("report/report.json").is_file());
    assert_ne!(stable_hash(b"a"), stable_hash(b"b"));
}
