//! ARCHITECTURE.md's module table is the rule of which module may import
//! which: this reads the table and every `crate::…` path in the library's
//! code (tests and doc comments aside) and fails on an import the table
//! does not allow, on a module the table does not name, and on a name
//! imported through the crate root instead of the module that owns it.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The modules a row's imports cell allows; `None` for "everything".
type Allowed = Option<BTreeSet<String>>;

/// Every backticked name in a table cell, with `a::{b, c}` spread out.
fn names(cell: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, part) in cell.split('`').enumerate() {
        if i % 2 == 0 {
            continue;
        }
        match part.split_once("::{") {
            Some((head, rest)) => out.extend(
                rest.trim_end_matches('}')
                    .split(',')
                    .map(|tail| format!("{head}::{}", tail.trim())),
            ),
            None => out.push(part.to_owned()),
        }
    }
    out
}

/// The revocation module is two rows; a bare `record` or `cache` in an
/// imports cell is its part, `revocation` both, and an item path
/// (`access_token::Verifier`) its module.
fn module_of_name(name: &str) -> Vec<String> {
    match name {
        "record" | "cache" => vec![format!("revocation::{name}")],
        "revocation" => ["record", "cache"]
            .iter()
            .map(|p| format!("revocation::{p}"))
            .collect(),
        n if n.starts_with("revocation::") => vec![n.to_owned()],
        n => vec![n.split("::").next().unwrap().to_owned()],
    }
}

/// Module → its row (lowest first) and what the row allows, from
/// ARCHITECTURE.md.
fn table() -> BTreeMap<String, (usize, Allowed)> {
    let text = fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let mut rows = BTreeMap::new();
    for (row, line) in text.lines().filter(|l| l.starts_with("| `")).enumerate() {
        let cells: Vec<&str> = line.split(" | ").collect();
        let allowed = if cells[2].contains("everything") {
            None
        } else {
            // Items in a note (`SharedReplay`) are no modules.
            Some(
                names(cells[2])
                    .iter()
                    .filter(|n| n.starts_with(|c: char| c.is_lowercase()))
                    .flat_map(|n| module_of_name(n))
                    .collect(),
            )
        };
        for module in names(cells[0]) {
            rows.insert(module, (row, allowed.clone()));
        }
    }
    rows
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        // src/bin holds binaries over the public API, not library modules.
        if path.ends_with("src/bin") {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a source file belongs to, as the table names it.
fn module_of_file(path: &Path) -> String {
    let rel = path.strip_prefix(Path::new(ROOT).join("src")).unwrap();
    let parts: Vec<&str> = rel
        .iter()
        .map(|p| p.to_str().unwrap().trim_end_matches(".rs"))
        .collect();
    match parts.as_slice() {
        ["revocation", "mod"] => "revocation::cache".to_owned(),
        ["revocation", part] => format!("revocation::{part}"),
        [top, ..] => (*top).to_owned(),
        [] => unreachable!(),
    }
}

/// The code of a file without its unit tests and comments.
fn code(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names a module folder's `mod.rs` re-exports, by the file they come
/// from (`pub use record::{Revocation, …}` → Revocation: record).
fn reexports(dir: &str) -> BTreeMap<String, String> {
    let text = code(&Path::new(ROOT).join("src").join(dir).join("mod.rs"));
    let mut out = BTreeMap::new();
    for stmt in text.split(';') {
        let Some(rest) = stmt.trim().split_once("use ").map(|(_, r)| r) else {
            continue;
        };
        let Some((sub, items)) = rest.split_once("::") else {
            continue;
        };
        for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            let item = item.trim();
            if !item.is_empty() {
                out.insert(item.to_owned(), sub.trim().to_owned());
            }
        }
    }
    out
}

/// The first segments of every `crate::` path in `code`: `crate::a::b`,
/// and each path of a `use crate::{a::…, b, …}` group. An item named
/// straight from the crate root (`crate::Issuer`) comes back as `::Issuer`.
fn imports(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // One level of braces: `a::{x, y}` keeps `a`.
            let mut depth = 1;
            let mut end = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = i;
                    break;
                }
            }
            let mut depth = 0;
            let mut item = String::new();
            for c in group[..end].chars().chain(std::iter::once(',')) {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(path_segments(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
        } else {
            let item: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':' || *c == '{')
                .collect();
            out.push(path_segments(&item));
        }
    }
    out.retain(|p| !p.is_empty());
    out
}

fn path_segments(item: &str) -> Vec<String> {
    item.split("::")
        .map(|s| {
            s.trim()
                .trim_start_matches('{')
                .split([',', ' ', '}'])
                .next()
                .unwrap()
                .to_owned()
        })
        .filter(|s| !s.is_empty() && s != "self")
        .collect()
}

/// The table's module of an imported path.
fn target(path: &[String], revocation: &BTreeMap<String, String>) -> String {
    let head = path[0].as_str();
    if head.chars().next().is_some_and(char::is_uppercase) || path.len() == 1 && head == "fuzzing" {
        return format!("::{head}");
    }
    if head != "revocation" {
        return head.to_owned();
    }
    match path.get(1).map(String::as_str) {
        Some(sub @ ("record" | "cache")) => format!("revocation::{sub}"),
        Some(item) => format!(
            "revocation::{}",
            revocation
                .get(item)
                .unwrap_or_else(|| panic!("revocation re-exports no {item}"))
        ),
        None => "revocation::cache".to_owned(),
    }
}

/// The table's own rule: a row allows only modules above it.
#[test]
fn the_table_allows_only_imports_from_rows_above() {
    let rows = table();
    let mut wrong = Vec::new();
    for (module, (row, allowed)) in &rows {
        for to in allowed.iter().flatten() {
            match rows.get(to) {
                Some((above, _)) if above < row => {}
                Some(_) => wrong.push(format!("{module} allows {to}, which is not above it")),
                None => wrong.push(format!("{module} allows {to}, which has no row")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_import_is_one_the_architecture_table_allows() {
    let rows = table();
    assert!(rows.len() > 20, "the table did not parse: {rows:?}");
    let revocation = reexports("revocation");
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src"), &mut files);
    let mut wrong = BTreeSet::new();
    for file in &files {
        if file.ends_with("src/lib.rs") {
            continue;
        }
        let module = module_of_file(file);
        let Some((_, allowed)) = rows.get(&module) else {
            wrong.insert(format!("{module}: not in the table ({})", file.display()));
            continue;
        };
        let mut text = code(file);
        if module.starts_with("revocation::") {
            // The deny list's parts name each other through `super`.
            text = text.replace("super::", "crate::revocation::");
        }
        for path in imports(&text) {
            let to = target(&path, &revocation);
            if to == module {
                continue;
            }
            match allowed {
                None => {}
                Some(_) if to.starts_with("::") => {
                    wrong.insert(format!(
                        "{module} imports {} through the crate root",
                        &to[2..]
                    ));
                }
                Some(allowed) if !allowed.contains(&to) => {
                    wrong.insert(format!(
                        "{module} imports {to} (`crate::{}`)",
                        path.join("::")
                    ));
                }
                Some(_) => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "ARCHITECTURE.md disagrees with the code:\n{}",
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// The parser itself, on the shapes the code uses.
#[test]
fn imports_are_read_from_groups_paths_and_nested_groups() {
    let code = "use crate::{a::{X, Y}, b, c::d::E};\nlet x = crate::f::g(); crate::Root;";
    let heads: Vec<String> = imports(code).into_iter().map(|p| p[0].clone()).collect();
    assert_eq!(heads, ["a", "b", "c", "f", "Root"]);
    assert_eq!(
        names("`revocation::{revoker, sync}`, `dpop` (the trait)"),
        ["revocation::revoker", "revocation::sync", "dpop"]
    );
}
