//! `lookalike duplicates` and `lookalike undo`: list groups of copies, act on them safely.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::{PathArg, display_path, out_err, print_json, progress_bar, render_progress};
use crate::cleanup::{self, Action, Outcome};
use crate::collection::{Collection, advised_command};
use crate::crawl::CrawlConfig;
use crate::duplicates::{
    Findings, Group, KeepRule, Similarity, find_in_store, listing_json, reclaimable,
};
use crate::error::{Error, Result};
use crate::features::Profile;
use crate::index::IndexConfig;
use crate::path_repr::escape_message;
use crate::text::{counted, for_count};

#[derive(Debug, Args)]
pub(crate) struct DuplicatesArgs {
    /// Folders to look in: indexed first (incrementally), then searched. None: the whole index.
    #[arg(value_name = "DIR", value_parser = PathArg)]
    dirs: Vec<PathBuf>,
    /// How alike copies must be: strict, default, loose, or a signature distance from 0 to 2.
    #[arg(long, value_name = "LEVEL", default_value = "default")]
    similarity: String,
    /// Which copy of a group to keep: best (most pixels, then oldest, then largest file),
    /// newest, oldest, shortest-path, or match:GLOB (a copy whose path matches).
    #[arg(long, value_name = "RULE", default_value = "best")]
    keep: String,
    /// Print JSON (schema in README.md).
    #[arg(long, conflicts_with_all = ["csv", "null"])]
    json: bool,
    /// Print CSV: group, role, distance, exact, width, height, bytes, path, path_hex (the
    /// name's bytes in hex when it is not UTF-8).
    #[arg(long, conflicts_with = "null")]
    csv: bool,
    /// Print only the paths of the copies not kept, each followed by a NUL byte (for xargs -0).
    #[arg(short = '0', long = "null")]
    null: bool,
    /// Move the copies not kept into DIR/<name of their indexed folder>/, keeping their paths
    /// inside it.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["trash", "hardlink", "delete"], value_parser = PathArg)]
    move_to: Option<PathBuf>,
    /// Move the copies not kept to the desktop trash.
    #[arg(long, conflicts_with_all = ["hardlink", "delete"])]
    trash: bool,
    /// Replace byte-identical copies by hard links to the kept one (edited copies are skipped).
    #[arg(long, conflicts_with = "delete")]
    hardlink: bool,
    /// Delete the copies not kept, for good: needs --apply and --yes-delete.
    #[arg(long)]
    delete: bool,
    /// Carry out the plan the last dry run of the action showed (refused when there is none or
    /// the plan changed since). Without it, the action is a dry run that prints what would happen.
    #[arg(long)]
    apply: bool,
    /// Confirms --delete: the copies cannot be brought back.
    #[arg(long)]
    yes_delete: bool,
    /// Feature profile of a new index (see `lookalike index --profile`). Default: `duplicates`
    /// (duplicate signatures only, all that finding copies needs; `query` then needs another
    /// profile). An existing index keeps its own: another is refused.
    #[arg(long, value_enum)]
    profile: Option<Profile>,
}

#[derive(Debug, Args)]
pub(crate) struct UndoArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn cmd_duplicates(
    collection: &Collection,
    args: DuplicatesArgs,
    quiet: bool,
) -> Result<ExitCode> {
    let test = Similarity::parse(&args.similarity)?.test();
    let keep = KeepRule::parse(&args.keep)?;
    let action = if let Some(dest) = &args.move_to {
        Some(Action::MoveTo(cleanup::resolve_move_target(dest)?))
    } else if args.trash {
        cleanup::check_trash()?;
        Some(Action::Trash)
    } else if args.hardlink {
        Some(Action::Hardlink)
    } else if args.delete {
        Some(Action::Delete)
    } else {
        None
    };
    if args.apply && action.is_none() {
        return Err(Error::InvalidInput(
            "--apply needs an action: --move-to DIR, --trash, --hardlink or --delete".into(),
        ));
    }
    if args.yes_delete && !args.delete {
        return Err(Error::InvalidInput(
            "--yes-delete confirms --delete, which is not given: nothing to confirm".into(),
        ));
    }
    if args.delete && args.apply && !args.yes_delete {
        return Err(Error::InvalidInput(
            "--delete removes files for good: add --yes-delete to confirm, or use --trash or --move-to DIR, which `lookalike undo` can reverse".into(),
        ));
    }
    for dir in &args.dirs {
        let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
        if !meta.is_dir() {
            return Err(Error::InvalidInput(format!(
                "{}: not a folder; `lookalike duplicates` compares the images of folders (give the folder that holds it)",
                crate::path_repr::shown(dir)
            )));
        }
    }
    // Ctrl-C (or SIGTERM) stops an index refresh or an applied run between steps; a listing
    // is left to the default, which ends it at once.
    let stop = if !args.dirs.is_empty() || args.apply {
        super::install_stop_flag()
    } else {
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false))
    };
    // an existing index keeps its profile: switching it drops or re-extracts every image's
    // vectors, which only `index --profile` does
    if let Some(wanted) = args.profile.filter(|_| collection.exists()) {
        let recorded = collection.recorded_profile()?;
        if wanted != recorded {
            let effect = if recorded.ranks() && !wanted.ranks() {
                "would drop every image's ranking vectors, graph and thumbnails, so `query` and `serve` could no longer search it"
            } else {
                "would extract every image again"
            };
            return Err(Error::InvalidWithCommand {
                reason: format!(
                    "the index at {} has the '{}' profile; `duplicates --profile {}` {effect}, and `duplicates` never changes an index's profile: leave --profile out to find copies with the index as it is, or switch it first",
                    collection.dir().display(),
                    recorded.name(),
                    wanted.name()
                ),
                command: advised_command(collection, &format!("index --profile {}", wanted.name())),
                then: "switches it".into(),
            });
        }
    }
    let mut within = Vec::new();
    if !args.dirs.is_empty() {
        // A new index needs no more than the duplicate signatures: with the duplicates
        // profile it finds the copies the others find (BENCHMARKS.md, "Duplicates").
        let chosen_for_new = args.profile.is_none() && !collection.exists();
        let config = IndexConfig {
            crawl: CrawlConfig {
                roots: args.dirs.clone(),
                ..Default::default()
            },
            profile: if chosen_for_new {
                Some(Profile::Duplicates)
            } else {
                args.profile
            },
            command: Some("duplicates"),
            ..Default::default()
        };
        let bar = progress_bar(quiet);
        let on_progress = |p| render_progress(&bar, p);
        let summary = crate::index::run(collection, &config, &on_progress, &stop);
        bar.finish_and_clear();
        let summary = summary?;
        if summary.interrupted {
            // why the exit status is not 0: printed under -q too
            super::note_interrupted(&summary);
            return Ok(ExitCode::from(super::EXIT_INTERRUPTED));
        }
        // a listing that leaves files out says so under -q too
        if super::some_failed(&summary) {
            note!(
                "warning: some files could not be indexed and are not compared (`{}` lists them)",
                advised_command(collection, "status")
            );
        }
        if !quiet {
            super::note_remembered_walk(&summary);
        }
        if !quiet && chosen_for_new {
            note!(
                "note: the new index holds duplicate signatures only, which is all duplicates need; `{}` (or `--profile fast`) describes the images for `query` and `serve`",
                advised_command(collection, "index --profile full")
            );
        }
        for d in &args.dirs {
            within.push(std::fs::canonicalize(d).map_err(|e| Error::io(d, e))?);
        }
    }
    let store = collection.open_store_read_only()?;
    let spinner = super::spinner(quiet, "comparing images");
    let findings = find_in_store(&store, &within, test, &keep);
    spinner.finish_and_clear();
    let findings = findings?;
    let tracked = store.roots()?;
    if let Some(Action::MoveTo(dest)) = &action {
        cleanup::check_move_target(
            dest,
            collection.dir(),
            &findings.groups,
            tracked.values().map(PathBuf::as_path),
            collection
                .walk_options(&store)?
                .is_some_and(|w| w.follow_symlinks),
        )?;
    }
    let unmatched = findings
        .groups
        .iter()
        .filter(|g| keep.matches_none_of(g))
        .count();
    // warnings, printed under -q too: each says the listing is not what was asked for
    if unmatched > 0 {
        note!(
            "warning: --keep {}: no copy matches in {unmatched} of {}, which {} best copy instead ({})",
            args.keep.trim(),
            counted(findings.groups.len(), "group", "groups"),
            for_count(unmatched, "keeps its", "keep their"),
            crate::duplicates::pattern_hint(&args.keep)
        );
    }
    if findings.unsigned > 0 {
        note!(
            "warning: {} indexed before duplicate signatures existed; only {} byte-identical copies are found until `{}` runs again",
            counted(findings.unsigned, "image was", "images were"),
            for_count(findings.unsigned, "its", "their"),
            advised_command(collection, "index")
        );
    }
    if findings.outdated {
        note!(
            "warning: the duplicate signatures in this index were made by an older version of lookalike; its groups may differ until `{}` makes them again",
            advised_command(collection, "index")
        );
    }
    if findings.gone > 0 {
        note!(
            "warning: {} gone from disk since {} indexed and {} left out; `{}` brings the index up to date",
            counted(findings.gone, "indexed image is", "indexed images are"),
            for_count(findings.gone, "it was", "they were"),
            for_count(findings.gone, "is", "are"),
            advised_command(collection, "index")
        );
    }
    if findings.damaged > 0 {
        note!(
            "warning: {} a damaged duplicate signature; only {} byte-identical copies are found until `{}` extracts {} again",
            counted(findings.damaged, "image has", "images have"),
            for_count(findings.damaged, "its", "their"),
            advised_command(collection, "index --repair"),
            for_count(findings.damaged, "it", "them")
        );
    }
    if args.apply {
        findings.check_current(&advised_command(collection, "index"))?;
        keep.check_matches_some("--keep", &args.keep, &findings.groups)?;
    }
    // the copies every action leaves alone, as they stand before this run acts
    let held = cleanup::left_alone_each(&findings.groups);
    let outcomes = match &action {
        Some(a) => {
            let steps = cleanup::plan(&findings.groups, a, tracked.values().map(PathBuf::as_path));
            let journals = cleanup::journal_dir(collection.dir());
            // an apply does what the last dry run of this action showed, or nothing: a
            // changed rule, similarity or set of folders changes the plan too
            let settings = match a {
                Action::MoveTo(dest) => format!("{}\0{}", a.name(), dest.display()),
                _ => a.name().to_string(),
            };
            let digest = cleanup::plan_digest(a, &steps, &journals);
            let reviewed = if args.apply {
                match cleanup::reviewed_plan(collection.dir(), &settings) {
                    None if let Action::MoveTo(dest) = a
                        && let Some(last) = cleanup::reviewed_move_target(collection.dir())
                        && last != *dest => return Err(Error::InvalidInput(format!(
                        "the plan differs from the last dry run of this action: it would move copies into {}, this command into {} (a relative --move-to folder is taken from the folder the command runs in): nothing was done; run the dry run again and review it",
                        crate::path_repr::shown(&last),
                        crate::path_repr::shown(dest)
                    ))),
                    None => return Err(Error::InvalidInput(
                        "--apply carries out the plan a dry run showed, and none of this action is recorded in this index (or its plan was applied since): run the same command without --apply, review what it lists, then add --apply".into(),
                    )),
                    Some(reviewed) if reviewed.digest != digest => return Err(Error::InvalidInput(
                        "the plan differs from the last dry run of this action (other settings or folders, files indexed, changed, touched or gone since, or a run applied or undone since): nothing was done; run the dry run again and review it".into(),
                    )),
                    Some(reviewed) => reviewed,
                }
            } else {
                cleanup::Reviewed::default()
            };
            // a dry run says "would do" only of what an apply can do: one that cannot keep its
            // journal would fail at once
            let unwritable = if args.apply {
                None
            } else {
                cleanup::journal_unwritable(&journals)
            };
            if let Some(why) = &unwritable {
                eprintln!("warning: {why}");
            }
            if args.apply {
                super::install_stop_flag_saying("finishing the current step");
            }
            let outcomes =
                cleanup::execute(&journals, a, &steps, args.apply, &reviewed.held, &stop)?;
            let recorded = if args.apply {
                cleanup::forget_reviewed_plan(collection.dir(), &settings);
                if let Action::MoveTo(dest) = a {
                    cleanup::forget_move_target(collection.dir(), dest);
                }
                Ok(())
            } else {
                cleanup::record_reviewed_plan(
                    collection.dir(),
                    &settings,
                    &cleanup::Reviewed::of(&digest, &steps, &outcomes),
                )
                .and_then(|()| match a {
                    Action::MoveTo(dest) => cleanup::record_move_target(collection.dir(), dest),
                    _ => Ok(()),
                })
            };
            if let Err(e) = recorded
                && unwritable.is_none()
            {
                eprintln!(
                    "warning: this dry run could not be recorded in the index folder {} ({e}), and an --apply needs one recorded: make the folder writable and run the dry run again",
                    display_path(collection.dir())
                );
            }
            Some((a, steps, outcomes))
        }
        None => None,
    };
    // a dry run of an action counts what its apply would free: not the copies it skips
    let reclaim = match &outcomes {
        Some((_, steps, outcomes)) if !args.apply => cleanup::would_free_bytes(steps, outcomes),
        _ => reclaimable(&findings.groups),
    };
    // with an action, each copy (in listing order, one step each): whether the run does it
    // or, in a dry run, would
    let acted: Option<Vec<bool>> = outcomes.as_ref().map(|(_, _, outcomes)| {
        outcomes
            .iter()
            .map(|o| matches!(o, Outcome::WouldDo | Outcome::Done))
            .collect()
    });
    if args.json {
        let mut doc = listing_json(&findings, &held);
        doc["reclaimable_bytes"] = reclaim.into();
        if let Some((a, steps, outcomes)) = &outcomes {
            doc["action"] = cleanup::action_json(a, steps, outcomes, args.apply);
        }
        print_json(&doc)?;
    } else if args.csv {
        write_csv(&findings.groups, &held, acted.as_deref())?;
    } else if args.null {
        // only the copies an action would act on: `rm` on the others would remove a file
        // lookalike itself leaves alone, or (with `--hardlink`) an edited copy it skips
        let mut out = std::io::stdout().lock();
        let copies = findings.groups.iter().flat_map(|g| g.copies());
        let listed: Vec<&Path> = match &acted {
            Some(acted) => copies
                .zip(acted)
                .filter(|(_, acts)| **acts)
                .map(|(m, _)| m.record.path.as_path())
                .collect(),
            None => copies
                .zip(&held)
                .filter(|(_, why)| why.is_none())
                .map(|(m, _)| m.record.path.as_path())
                .collect(),
        };
        for path in listed {
            out.write_all(path.as_os_str().as_encoded_bytes())
                .and_then(|()| out.write_all(b"\0"))
                .map_err(out_err)?;
        }
        out.flush().map_err(out_err)?;
    } else {
        // an applied run says what it freed: its copies are gone from the size still reclaimable
        let freed = outcomes
            .as_ref()
            .filter(|_| args.apply)
            .map(|(_, steps, outcomes)| cleanup::freed_bytes(steps, outcomes));
        write_text(&findings, &held, reclaim, freed)?;
    }
    // the line for each copy and the total are the text output's end; `--csv` and `-0` hold
    // the plan in their own form, so there they are remarks on stderr
    if let Some((a, steps, outcomes)) = &outcomes
        && !args.json
    {
        let report = report_actions(collection, a, steps, outcomes, args.apply, quiet);
        if args.csv || args.null {
            let _ = std::io::stderr().write_all(report.as_bytes());
        } else if !report.is_empty() {
            // a blank line parts it from the listing's last group
            let mut out = std::io::stdout().lock();
            out.write_all(b"\n")
                .and_then(|()| out.write_all(report.as_bytes()))
                .and_then(|()| out.flush())
                .map_err(out_err)?;
        }
    }
    let failed = outcomes
        .as_ref()
        .is_some_and(|(_, _, o)| o.iter().any(|o| matches!(o, Outcome::Failed(_))));
    Ok(if stop.load(std::sync::atomic::Ordering::Relaxed) {
        if args.apply && outcomes.is_some() {
            eprintln!(
                "interrupted: the steps done are kept (`{}` reverses them); run the dry run again to see what is left, then apply it",
                advised_command(collection, "undo")
            );
        }
        ExitCode::from(super::EXIT_INTERRUPTED)
    } else if failed {
        ExitCode::from(super::EXIT_SOME_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn human_bytes(n: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut x = n as f64;
    let mut u = 0;
    while x >= 1000.0 && u + 1 < units.len() {
        x /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{x:.1} {}", units[u])
    }
}

/// The listing as text; `held`: why each copy is left alone by every action, if it is;
/// `left`: the bytes still reclaimable (by the action of a dry run), `freed`: those an applied
/// run freed.
fn write_text(f: &Findings, held: &[Option<String>], left: u64, freed: Option<u64>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let copies: usize = f.groups.iter().map(|g| g.copies().len()).sum();
    let alone = held.iter().filter(|h| h.is_some()).count();
    let mut held = held.iter();
    let size = match freed {
        Some(freed) if left > 0 => format!(
            "{} freed, {} still reclaimable",
            human_bytes(freed),
            human_bytes(left)
        ),
        Some(freed) => format!("{} freed", human_bytes(freed)),
        None => human_bytes(left),
    };
    writeln!(
        out,
        "{}, {} not kept{} ({size}) among {} (each a copy of its group's centre: {}; d: distance to the copy kept)",
        counted(f.groups.len(), "group", "groups"),
        counted(copies, "copy", "copies"),
        if copies == 1 && alone == 1 {
            ", left alone by every action".to_string()
        } else if alone > 0 {
            format!(", {alone} of them left alone by every action")
        } else {
            String::new()
        },
        counted(f.images, "image", "images"),
        f.test
    )
    .map_err(out_err)?;
    for (i, g) in f.groups.iter().enumerate() {
        writeln!(out, "\ngroup {} ({} images)", i + 1, g.members.len()).map_err(out_err)?;
        for (k, m) in g.members.iter().enumerate() {
            let r = &m.record;
            let why = if k == 0 {
                None
            } else {
                held.next().cloned().flatten()
            };
            let (role, how) = if k == 0 {
                ("keep", String::new())
            } else if why.is_some() {
                (
                    "left",
                    if m.exact {
                        "identical".into()
                    } else {
                        format!("d={:.3}", m.distance)
                    },
                )
            } else if m.exact {
                ("copy", "identical".into())
            } else {
                ("copy", format!("d={:.3}", m.distance))
            };
            writeln!(
                out,
                "  {role}  {how:<9}  {:>11}  {:>9}  {}",
                format!("{}x{}", r.width, r.height),
                human_bytes(r.stamp.size),
                display_path(&r.path)
            )
            .map_err(out_err)?;
            if let Some(why) = why {
                writeln!(out, "        left alone: {}", escape_message(&why)).map_err(out_err)?;
            }
        }
    }
    out.flush().map_err(out_err)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The listing as CSV; a copy every action leaves alone (`held`, each copy's reason in order)
/// has the role `left_alone` (the text and JSON listings give the reason), and with an action
/// (`acted`, each copy in order), one the action skips has the role `skipped`.
fn write_csv(groups: &[Group], held: &[Option<String>], acted: Option<&[bool]>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "group,role,distance,exact,width,height,bytes,path,path_hex"
    )
    .map_err(out_err)?;
    let mut held = held.iter();
    let mut acted = acted.map(<[bool]>::iter);
    for (i, g) in groups.iter().enumerate() {
        for (k, m) in g.members.iter().enumerate() {
            let r = &m.record;
            let (why, acts) = if k == 0 {
                (None, true)
            } else {
                (
                    held.next().and_then(Option::as_ref),
                    acted
                        .as_mut()
                        .and_then(Iterator::next)
                        .is_none_or(|acts| *acts),
                )
            };
            writeln!(
                out,
                "{},{},{:.4},{},{},{},{},{},{}",
                i + 1,
                match (k, &why, acts) {
                    (0, _, _) => "keep",
                    (_, Some(_), _) => "left_alone",
                    (_, None, false) => "skipped",
                    _ => "copy",
                },
                m.distance,
                m.exact,
                r.width,
                r.height,
                r.stamp.size,
                csv_field(&r.path.to_string_lossy()),
                // a name that is not UTF-8, byte for byte (`path` shows it with U+FFFD)
                crate::path_repr::invalid_bytes(&r.path)
                    .map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>())
                    .unwrap_or_default()
            )
            .map_err(out_err)?;
        }
    }
    out.flush().map_err(out_err)
}

/// A line for each copy an action did, would do or skipped, then the total (not under `-q`),
/// with the commands that act on `collection` next.
fn report_actions(
    collection: &Collection,
    action: &Action,
    steps: &[cleanup::Step],
    outcomes: &[Outcome],
    applied: bool,
    quiet: bool,
) -> String {
    use std::fmt::Write as _;
    let mut report = String::new();
    let verb = match action {
        Action::MoveTo(_) => "move",
        Action::Trash => "trash",
        Action::Hardlink => "hard-link",
        Action::Delete => "delete",
    };
    let mut done = 0;
    let mut skipped = 0;
    let mut failed = 0;
    for (s, o) in steps.iter().zip(outcomes) {
        let target = s
            .target
            .as_ref()
            .map(|t| format!(" -> {}", display_path(t)))
            .unwrap_or_default();
        match o {
            // a file's step is the command's result, not a summary: kept under -q
            Outcome::WouldDo => {
                done += 1;
                let _ = writeln!(report, "would {verb} {}{target}", display_path(&s.path));
            }
            Outcome::Done => {
                done += 1;
                let _ = writeln!(report, "{verb}: {}{target}", display_path(&s.path));
            }
            Outcome::Skipped(why) => {
                skipped += 1;
                let _ = writeln!(
                    report,
                    "skipped: {}: {}",
                    display_path(&s.path),
                    escape_message(why)
                );
            }
            Outcome::Failed(why) => {
                failed += 1;
                let _ = writeln!(
                    report,
                    "failed: {}: {}",
                    display_path(&s.path),
                    escape_message(why)
                );
            }
        }
    }
    if quiet {
        return report;
    }
    if applied && done == 0 {
        let _ = writeln!(
            report,
            "0 done, {skipped} skipped, {failed} failed: no file was changed, so there is nothing to undo"
        );
    } else if applied {
        let _ = writeln!(
            report,
            "{done} done, {skipped} skipped, {failed} failed; `{}` reverses this run{}; `{}` brings the index up to date",
            advised_command(collection, "undo"),
            if matches!(action, Action::Delete) {
                " except deletions"
            } else {
                ""
            },
            advised_command(collection, "index")
        );
    } else {
        let _ = writeln!(
            report,
            "dry run: {done} would be done, {skipped} skipped; nothing changed.{}",
            if done == 0 {
                ""
            } else {
                " Add --apply to do it."
            }
        );
    }
    report
}

pub(crate) fn cmd_undo(collection: &Collection, args: UndoArgs, quiet: bool) -> Result<ExitCode> {
    if !collection.exists() {
        return Err(Error::NoIndex(collection.dir().to_path_buf()));
    }
    let journals = cleanup::journal_dir(collection.dir());
    let report = cleanup::undo(&journals)?;
    let Some(report) = report else {
        if args.json {
            print_json(&Value::Null)?;
        } else if !quiet {
            match cleanup::last_undone(&journals) {
                Some(undone) => note!(
                    "nothing to undo: the last applied run (journal {}) was undone already",
                    display_path(&undone)
                ),
                None => {
                    note!("nothing to undo: no `duplicates --apply` run is recorded in this index")
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    };
    if args.json {
        print_json(&report)?;
    } else {
        // the line for each file and the total are the result, on stdout; the notes on a
        // damaged or kept journal are warnings, on stderr
        let lines = undo_lines(&report, quiet);
        let written = {
            let mut out = std::io::stdout().lock();
            out.write_all(lines.as_bytes())
                .and_then(|()| out.flush())
                .map_err(out_err)
        };
        for n in &report.damaged_lines {
            note!(
                "damaged {}:{n}: this line of the journal cannot be read; a step it held was not undone",
                display_path(&report.journal)
            );
        }
        if !report.damaged_lines.is_empty() {
            note!(
                "the journal is kept: put back by hand the files its damaged lines name (the journal keeps each path as hex bytes), then move the journal out of {}",
                display_path(report.journal.parent().unwrap_or(Path::new(".")))
            );
        } else if !report.closed {
            note!(
                "some files could not be restored: fix the cause above and run `{}` again to retry them",
                advised_command(collection, "undo")
            );
        }
        written?;
    }
    let not_restored =
        !report.damaged_lines.is_empty() || report.steps.iter().any(|r| r.not_restored());
    Ok(if not_restored {
        ExitCode::from(super::EXIT_SOME_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `undo`'s line for each file the run changed, then the total (neither under `-q`, but for
/// the files not restored).
fn undo_lines(report: &cleanup::UndoReport, quiet: bool) -> String {
    use std::fmt::Write as _;
    let mut lines = String::new();
    // steps whose intent was written but which failed or never ran changed nothing
    let changed = |r: &&cleanup::Reversal| r.reversible || r.op == "delete";
    for r in report.steps.iter().filter(changed) {
        let path = display_path(&r.path);
        let _ = match &r.outcome {
            Outcome::Done if !quiet && r.already_back => {
                writeln!(lines, "already back: {path}: it is already back in place")
            }
            Outcome::Done if !quiet => writeln!(lines, "restored: {path}"),
            Outcome::Skipped(why) => {
                writeln!(lines, "not restored: {path}: {}", escape_message(why))
            }
            Outcome::Failed(why) => writeln!(lines, "failed: {path}: {}", escape_message(why)),
            Outcome::Done | Outcome::WouldDo => Ok(()),
        };
    }
    let restored = report
        .steps
        .iter()
        .filter(|r| r.reversible && r.outcome == Outcome::Done && !r.already_back)
        .count();
    let already = report.steps.iter().filter(|r| r.already_back).count();
    let deleted = report
        .steps
        .iter()
        .filter(|r| r.op == "delete" && !r.reversible && matches!(r.outcome, Outcome::Skipped(_)))
        .count();
    if !quiet {
        let mut total = format!(
            "undid the last {} run: {restored} of {} restored",
            report.action,
            counted(report.steps.iter().filter(changed).count(), "file", "files"),
        );
        if already > 0 {
            let _ = write!(total, ", {already} already back");
        }
        if deleted > 0 {
            let _ = write!(
                total,
                ", {deleted} deleted for good (a delete cannot be undone; it is not counted as a failure)"
            );
        }
        let _ = writeln!(lines, "{total}");
    }
    lines
}
