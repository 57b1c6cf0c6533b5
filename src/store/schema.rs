//! The schema the migrations make, and the check that an opened database holds it.

use std::sync::OnceLock;

use super::*;

/// A schema object as `sqlite_master` records it, its SQL [`normalized`]. SQLite's own objects
/// (`sqlite_autoindex_*`, `sqlite_stat1`, ...) are left out: they follow from the others.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SchemaObject {
    /// `table`, `index`, `trigger` or `view`.
    kind: String,
    name: String,
    /// The table an index or trigger belongs to.
    table: String,
    sql: String,
}

/// How a database's schema compares with the one its version stands for.
pub(super) enum SchemaVerdict {
    /// As the migrations made it (or empty, at version 0; or newer than this build).
    Made,
    /// Most objects are lookalike's, some are missing, changed or foreign: damage, in words.
    Damaged(String),
    /// Not a lookalike index: the names of its tables.
    Foreign(Vec<String>),
}

/// The objects of each schema version: entry `v` after migrations 1 to `v`, made once by
/// running them on a database in memory.
fn made_by_migrations() -> &'static [Vec<SchemaObject>] {
    static MADE: OnceLock<Vec<Vec<SchemaObject>>> = OnceLock::new();
    MADE.get_or_init(|| {
        let conn = Connection::open_in_memory().expect("SQLite opens a database in memory");
        let mut made = vec![Vec::new()];
        for (name, sql) in MIGRATIONS {
            conn.execute_batch(sql)
                .unwrap_or_else(|e| panic!("migration {name} runs on its predecessors: {e}"));
            made.push(objects(&conn).expect("an in-memory schema reads"));
        }
        made
    })
}

/// The schema objects of `conn`, by kind and name.
fn objects(conn: &Connection) -> rusqlite::Result<Vec<SchemaObject>> {
    let mut stmt = conn.prepare(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name",
    )?;
    stmt.query_map([], |r| {
        Ok(SchemaObject {
            kind: r.get(0)?,
            name: r.get(1)?,
            table: r.get(2)?,
            sql: normalized(&r.get::<_, Option<String>>(3)?.unwrap_or_default()),
        })
    })?
    .collect()
}

/// `sql` without its comments and with each run of spacing one space; quoted text is kept
/// as written. SQLite stores a statement's text as given, comments included.
fn normalized(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut space = false;
    while let Some(c) = chars.next() {
        let close = match c {
            '\'' | '"' | '`' => Some(c),
            '[' => Some(']'),
            _ => None,
        };
        if c == '-' && chars.peek() == Some(&'-') {
            chars.by_ref().find(|&c| c == '\n');
            space = true;
            continue;
        }
        if c == '/' && chars.peek() == Some(&'*') {
            chars.next();
            let mut last = ' ';
            for c in chars.by_ref() {
                if last == '*' && c == '/' {
                    break;
                }
                last = c;
            }
            space = true;
            continue;
        }
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
        if let Some(close) = close {
            // a doubled quote closes and opens again: the text stays whole
            for c in chars.by_ref() {
                out.push(c);
                if c == close {
                    break;
                }
            }
        }
    }
    out
}

/// Compares the objects `found` in a database of schema `version` with those its migrations
/// made.
fn verdict(found: &[SchemaObject], version: i64) -> SchemaVerdict {
    let made = match usize::try_from(version) {
        Ok(v) if v < made_by_migrations().len() => &made_by_migrations()[v],
        // newer than this build: refused by version elsewhere
        _ => return SchemaVerdict::Made,
    };
    if version == 0 {
        return if found.is_empty() {
            SchemaVerdict::Made
        } else {
            SchemaVerdict::Foreign(tables(found))
        };
    }
    let same = |a: &SchemaObject, b: &SchemaObject| a.kind == b.kind && a.name == b.name;
    let mut problems = Vec::new();
    let mut intact = 0;
    for m in made {
        match found.iter().find(|f| same(f, m)) {
            None => problems.push(format!("{} `{}` is missing", m.kind, m.name)),
            Some(f) if f == m => intact += 1,
            Some(_) => problems.push(format!(
                "{} `{}` is not as lookalike made it",
                m.kind, m.name
            )),
        }
    }
    for f in found.iter().filter(|f| !made.iter().any(|m| same(f, m))) {
        problems.push(format!("{} `{}` is not lookalike's", f.kind, f.name));
    }
    if problems.is_empty() {
        SchemaVerdict::Made
    } else if 2 * intact >= made.len() {
        const SHOWN: usize = 4;
        let more = problems.len().saturating_sub(SHOWN);
        problems.truncate(SHOWN);
        if more > 0 {
            problems.push(format!("{more} more"));
        }
        SchemaVerdict::Damaged(problems.join(", "))
    } else {
        SchemaVerdict::Foreign(tables(found))
    }
}

fn tables(found: &[SchemaObject]) -> Vec<String> {
    found
        .iter()
        .filter(|o| o.kind == "table")
        .map(|o| o.name.clone())
        .collect()
}

impl Store {
    /// The database's schema version and how its schema compares with what the migrations
    /// made at that version, read in one transaction (a migration may commit meanwhile).
    pub(super) fn schema_verdict(&self) -> Result<(i64, SchemaVerdict)> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| db(&self.path, e))?;
        let version = self.schema_version()?;
        let found = objects(&tx).map_err(|e| db(&self.path, e))?;
        drop(tx);
        Ok((version, verdict(&found, version)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_spacing_do_not_count_but_quoted_text_does() {
        assert_eq!(
            normalized(
                "CREATE TABLE t (\r\n  a INT, -- it's a\n  b /* x */ TEXT DEFAULT '--  x'\n)"
            ),
            "CREATE TABLE t ( a INT, b TEXT DEFAULT '--  x' )"
        );
        assert_eq!(normalized("x  [a  b]\t\"c -- d\""), "x [a  b] \"c -- d\"");
    }

    /// Each version's schema is what its migrations make, whichever the version; any table,
    /// index, trigger or column missing, changed or added is damage; a database holding little
    /// of lookalike's is another program's.
    #[test]
    fn a_schema_unlike_the_migrations_is_damage_or_foreign() {
        let store = Store::open_in_memory().unwrap();
        assert!(matches!(
            store.schema_verdict().unwrap(),
            (SCHEMA_VERSION, SchemaVerdict::Made)
        ));
        let each_change = [
            ("DROP TABLE thumbnails", "table `thumbnails` is missing"),
            // most of the schema is still lookalike's: damage, not another program's database
            ("DROP TABLE images", "table `images` is missing"),
            ("DROP TABLE failures", "table `failures` is missing"),
            (
                "DROP INDEX images_by_hash",
                "index `images_by_hash` is missing",
            ),
            (
                "DROP TRIGGER thumbnails_follow_deleted_images",
                "trigger `thumbnails_follow_deleted_images` is missing",
            ),
            (
                "ALTER TABLE failures DROP COLUMN ctime_ns",
                "table `failures` is not as lookalike made it",
            ),
            (
                "ALTER TABLE meta ADD COLUMN note TEXT",
                "table `meta` is not as lookalike made it",
            ),
            (
                "CREATE TABLE moz_places (id INTEGER)",
                "table `moz_places` is not lookalike's",
            ),
            (
                "CREATE INDEX by_size ON images(size)",
                "index `by_size` is not lookalike's",
            ),
            (
                "DROP TABLE roots; CREATE TABLE roots (id INTEGER PRIMARY KEY, path TEXT)",
                "table `roots` is not as lookalike made it",
            ),
        ];
        for (change, told) in each_change {
            let store = Store::open_in_memory().unwrap();
            store.conn.execute_batch(change).unwrap();
            match store.schema_verdict().unwrap().1 {
                SchemaVerdict::Damaged(why) => assert!(why.contains(told), "{change}: {why}"),
                _ => panic!("{change}: not told as damage"),
            }
        }
        // an older version's schema is its migrations' own
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0].1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let store = Store {
            conn,
            path: PathBuf::from(":memory:"),
            damaged: Default::default(),
        };
        assert!(matches!(
            store.schema_verdict().unwrap(),
            (1, SchemaVerdict::Made)
        ));
        store.conn.execute_batch("DROP TABLE failures").unwrap();
        assert!(matches!(
            store.schema_verdict().unwrap().1,
            SchemaVerdict::Damaged(_)
        ));
        // another program's tables under a version number
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE meta (k, v); CREATE TABLE images (id, data); PRAGMA user_version = 3",
        )
        .unwrap();
        let store = Store {
            conn,
            path: PathBuf::from(":memory:"),
            damaged: Default::default(),
        };
        match store.schema_verdict().unwrap().1 {
            SchemaVerdict::Foreign(tables) => assert_eq!(tables, ["images", "meta"]),
            _ => panic!("another program's database not told as such"),
        }
    }
}
