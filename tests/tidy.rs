//! Tidy checks over the source tree (rust-analyzer's `tidy.rs` is the model): they read
//! `src/` as text and keep the architecture honest.
//!
//! - Every rule in docs/ARCHITECTURE.md's "Rules the tidy test checks" table holds: a file
//!   under a row's folder never names a path the row forbids (`crate::director`, `ureq`...).
//! - No import circle between files: an edge A -> B is any path in A's non-test code that
//!   resolves into file B (`use` trees, `crate::`, `super::`, `self::`, a child module's
//!   name, `dpyfs::` in the binaries); every strongly connected component must be one file.
//! - No production function is longer than `FN_LINES_MAX` lines, except the few in
//!   `LONG_FNS`, each with its reason.
//!
//! The reader is a small lexer, not a parser: comments and literals are blanked (lines
//! kept), `#[cfg(test)]` items are cut, and paths are token sequences `a::b::c`. Macros
//! that build paths from pieces would escape it; the code base has none.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Longest production function, in lines from `fn` to its closing brace.
const FN_LINES_MAX: usize = 80;

/// Functions allowed past `FN_LINES_MAX`, as (file, function, reason).
const LONG_FNS: &[(&str, &str, &str)] = &[
    (
        "src/bin/dpyfs-director.rs",
        "options",
        "one flag table, read top to bottom; split it and the help text order is lost",
    ),
    (
        "src/bin/dpyfs-director.rs",
        "config",
        "one line or two per flag, in the order of the table",
    ),
];

/// Edges that may close a circle, as (from file, to file, reason). Empty: none is needed.
const CIRCLE_EDGES_ALLOWED: &[(&str, &str, &str)] = &[];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `src/`, as a path relative to the crate root with `/`.
fn source_files() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(&root().join("src"), &mut v);
    let mut names: Vec<String> = v
        .iter()
        .map(|p| {
            p.strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    names.sort();
    names
}

/// The source with comments, string and char literals blanked (newlines kept).
fn blank(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let keep = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(keep(c[i]));
                    i += 1;
                }
            }
        } else if ch == 'r' && (next == Some('#') || next == Some('"')) && !ident_before(&c, i) {
            // Raw string r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(ch);
                i += 1;
                continue;
            }
            out.push('"');
            for _ in i + 1..=j {
                out.push(' ');
            }
            j += 1;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    for _ in 0..hashes {
                        out.push(' ');
                    }
                    out.push('"');
                    break;
                }
                out.push(keep(c[j]));
                j += 1;
            }
            i = j;
        } else if ch == '"' {
            out.push('"');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < c.len() {
                    out.push(keep(c[i]));
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if ch == '\'' {
            // A char literal ('a', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                out.push(' ');
                i += 1;
                while i < c.len() && c[i] != '\'' {
                    if c[i] == '\\' {
                        out.push(' ');
                        i += 1;
                    }
                    out.push(' ');
                    i += 1;
                }
                out.push(' ');
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                out.push_str("   ");
                i += 3;
            } else {
                out.push(ch);
                i += 1;
            }
        } else {
            out.push(ch);
            i += 1;
        }
    }
    out
}

fn ident_before(c: &[char], i: usize) -> bool {
    i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_')
}

/// Index just past the brace that closes the one at `open`.
fn matching_brace(b: &[u8], open: usize) -> usize {
    let mut depth = 0;
    for (k, &ch) in b.iter().enumerate().skip(open) {
        match ch {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    b.len()
}

/// Blanks every item marked `#[cfg(test)]` (lines kept).
fn cut_tests(text: &str) -> String {
    let mut b = text.as_bytes().to_vec();
    let mark = b"#[cfg(test)]";
    let mut from = 0;
    while let Some(pos) = find(&b, mark, from) {
        let mut end = pos + mark.len();
        while end < b.len() && b[end] != b'{' && b[end] != b';' {
            end += 1;
        }
        if end < b.len() && b[end] == b'{' {
            end = matching_brace(&b, end);
        } else {
            end = (end + 1).min(b.len());
        }
        for ch in &mut b[pos..end] {
            if *ch != b'\n' {
                *ch = b' ';
            }
        }
        from = end;
    }
    String::from_utf8(b).unwrap()
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    (from..hay.len().saturating_sub(needle.len() - 1)).find(|&i| hay[i..].starts_with(needle))
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Colons,
    Punct(char),
}

fn tokens(text: &str) -> Vec<Tok> {
    let c: Vec<char> = text.chars().collect();
    let mut v = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_alphabetic() || ch == '_' {
            let s = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            v.push(Tok::Ident(c[s..i].iter().collect()));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            v.push(Tok::Colons);
            i += 2;
        } else {
            if !ch.is_whitespace() {
                v.push(Tok::Punct(ch));
            }
            i += 1;
        }
    }
    v
}

/// Expands a `use` tree starting at `t[i]` into full paths; returns the index after it.
fn use_tree(t: &[Tok], mut i: usize, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix.to_vec();
    loop {
        match t.get(i) {
            Some(Tok::Ident(s)) => {
                if s == "as" {
                    i += 2;
                    out.push(path.clone());
                    return i;
                }
                if s != "self" || path.is_empty() {
                    path.push(s.clone());
                }
                i += 1;
            }
            Some(Tok::Colons) => i += 1,
            Some(Tok::Punct('*')) => {
                out.push(path.clone());
                return i + 1;
            }
            Some(Tok::Punct('{')) => {
                i += 1;
                loop {
                    match t.get(i) {
                        Some(Tok::Punct('}')) => return i + 1,
                        Some(Tok::Punct(',')) => i += 1,
                        None => return i,
                        _ => i = use_tree(t, i, &path, out),
                    }
                }
            }
            _ => {
                out.push(path);
                return i;
            }
        }
    }
}

/// Every path a file names: `use` trees expanded, and `a::b::c` sequences in code.
fn paths(text: &str) -> Vec<Vec<String>> {
    let t = tokens(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if t[i] == Tok::Ident("use".into()) {
            i = use_tree(&t, i + 1, &[], &mut out);
            continue;
        }
        if let Tok::Ident(first) = &t[i] {
            let after_colons = i > 0 && t[i - 1] == Tok::Colons;
            if !after_colons && t.get(i + 1) == Some(&Tok::Colons) {
                let mut p = vec![first.clone()];
                let mut j = i + 1;
                while t.get(j) == Some(&Tok::Colons) {
                    match t.get(j + 1) {
                        Some(Tok::Ident(s)) => p.push(s.clone()),
                        _ => break,
                    }
                    j += 2;
                }
                out.push(p);
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// A file's module path: `src/director/meta/index.rs` -> `crate::director::meta::index`.
fn module_of(file: &str) -> Vec<String> {
    let rel = file.trim_start_matches("src/").trim_end_matches(".rs");
    let mut m = vec!["crate".to_string()];
    for part in rel.split('/') {
        if part != "mod" && part != "lib" {
            m.push(part.to_string());
        }
    }
    m
}

struct Tree {
    /// Module path -> file.
    modules: BTreeMap<Vec<String>, String>,
}

impl Tree {
    /// The absolute path a path in `file` names, when it is inside the crate.
    fn absolute(&self, file: &str, p: &[String]) -> Option<Vec<String>> {
        let is_bin = file.starts_with("src/bin/");
        let here = module_of(file);
        // The module `super` counts from: a file's own module.
        let mut base = here.clone();
        let mut rest = p;
        match p.first().map(String::as_str) {
            Some("crate") if !is_bin => return Some(p.to_vec()),
            Some("dpyfs") if is_bin => {
                let mut v = vec!["crate".to_string()];
                v.extend_from_slice(&p[1..]);
                return Some(v);
            }
            Some("self") | Some("Self") => rest = &p[1..],
            Some("super") => {
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop();
                    rest = &rest[1..];
                }
            }
            Some(_) => {
                // A child module's name, as in `index::Index` in director/mod.rs.
                let mut child = here.clone();
                child.push(p[0].clone());
                if is_bin || !self.modules.contains_key(&child) {
                    return None;
                }
            }
            None => return None,
        }
        if is_bin {
            return None;
        }
        base.extend_from_slice(rest);
        Some(base)
    }

    /// The file that holds the item an absolute path names (its longest module prefix).
    fn file_of(&self, abs: &[String]) -> Option<&String> {
        (1..=abs.len())
            .rev()
            .find_map(|n| self.modules.get(&abs[..n]))
    }
}

struct Source {
    file: String,
    /// Comments and literals blanked, test items cut.
    code: String,
}

fn sources() -> (Tree, Vec<Source>) {
    let mut modules = BTreeMap::new();
    let mut v = Vec::new();
    for f in source_files() {
        // Test-only files (`body/tests.rs`) and the binaries' shared helpers are not
        // production modules of the library.
        if f.ends_with("/tests.rs") {
            continue;
        }
        if !f.starts_with("src/bin/") {
            modules.insert(module_of(&f), f.clone());
        }
        let text = fs::read_to_string(root().join(&f)).unwrap();
        v.push(Source {
            code: cut_tests(&blank(&text)),
            file: f,
        });
    }
    (Tree { modules }, v)
}

/// The rules of docs/ARCHITECTURE.md: (folder or file, forbidden path prefixes).
fn rules() -> Vec<(String, Vec<String>)> {
    let doc = fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let section = doc
        .split("## Rules the tidy test checks")
        .nth(1)
        .expect("docs/ARCHITECTURE.md has a section `## Rules the tidy test checks`");
    let mut v = Vec::new();
    for line in section.lines().skip_while(|l| !l.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with("`src/") {
            continue;
        }
        let ticked = |s: &str| -> Vec<String> {
            s.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        v.push((cells[1].trim_matches('`').to_string(), ticked(cells[2])));
    }
    assert!(v.len() >= 10, "the rules table has too few rows: {v:?}");
    v
}

fn forbidden(prefix: &str, abs: &[String]) -> bool {
    let want: Vec<&str> = prefix.split("::").collect();
    want.len() <= abs.len() && want.iter().zip(abs).all(|(a, b)| *a == b)
}

#[test]
fn modules_do_not_know_what_architecture_md_forbids() {
    let (tree, srcs) = sources();
    let rules = rules();
    let mut bad = Vec::new();
    for (folder, _) in &rules {
        assert!(
            root().join(folder).exists(),
            "ARCHITECTURE.md names `{folder}`, which does not exist"
        );
    }
    for s in &srcs {
        for (folder, banned) in &rules {
            let applies = if folder.ends_with('/') {
                s.file.starts_with(folder.as_str())
            } else {
                s.file == *folder
            };
            if !applies {
                continue;
            }
            for p in paths(&s.code) {
                let named = tree.absolute(&s.file, &p).or_else(|| {
                    // An outside crate (`ureq::Agent`) or, in a binary, the library.
                    Some(p.clone())
                });
                let named = named.unwrap();
                for b in banned {
                    if forbidden(b, &named) || forbidden(b, &p) {
                        bad.push(format!(
                            "{}: uses `{}` ({folder} must not know `{b}`)",
                            s.file,
                            p.join("::")
                        ));
                    }
                }
            }
        }
    }
    bad.dedup();
    assert!(bad.is_empty(), "boundaries crossed:\n{}", bad.join("\n"));
}

/// File-level import edges of the library (binaries are leaves: nothing imports them).
fn edges(tree: &Tree, srcs: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in srcs {
        let e = g.entry(s.file.clone()).or_default();
        for p in paths(&s.code) {
            if let Some(abs) = tree.absolute(&s.file, &p)
                && let Some(to) = tree.file_of(&abs)
                && *to != s.file
                && !CIRCLE_EDGES_ALLOWED
                    .iter()
                    .any(|(a, b, _)| *a == s.file && b == to)
            {
                e.insert(to.clone());
            }
        }
    }
    g
}

/// Strongly connected components with more than one file (Tarjan).
fn circles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct St<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(st: &mut St<'a>, v: &'a str) {
        let n = st.index.len();
        st.index.insert(v, n);
        st.low.insert(v, n);
        st.stack.push(v);
        st.on.insert(v);
        let g = st.g;
        for w in g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !g.contains_key(w) {
                continue;
            }
            if !st.index.contains_key(w) {
                visit(st, w);
                let lw = st.low[w];
                let lv = st.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if st.on.contains(w) {
                let iw = st.index[w];
                let lv = st.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if st.low[v] == st.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = st.stack.pop() {
                st.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                st.out.push(comp);
            }
        }
    }
    let mut st = St {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !st.index.contains_key(v.as_str()) {
            visit(&mut st, v);
        }
    }
    st.out
}

#[test]
fn no_import_circle_between_files() {
    let (tree, srcs) = sources();
    let g = edges(&tree, &srcs);
    let found = circles(&g);
    let mut msg = String::new();
    for c in &found {
        msg.push_str(&format!("circle through {} files:\n", c.len()));
        for f in c {
            let to: Vec<&String> = g[f].iter().filter(|t| c.contains(t)).collect();
            msg.push_str(&format!("  {f} -> {to:?}\n"));
        }
    }
    assert!(found.is_empty(), "{msg}");
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert(
        "c".to_string(),
        BTreeSet::from(["a".to_string(), "d".to_string()]),
    );
    g.insert("d".to_string(), BTreeSet::new());
    assert_eq!(circles(&g), vec![vec!["a", "b", "c"]]);
}

#[test]
fn the_reader_sees_use_trees_and_skips_tests_and_comments() {
    let src = "use crate::a::{b, c::{self, D}};\n// crate::x::y\nfn f() { super::e::g(); \"crate::s\"; }\n#[cfg(test)]\nmod tests { use crate::t; }\n";
    let p = paths(&cut_tests(&blank(src)));
    let shown: Vec<String> = p.iter().map(|v| v.join("::")).collect();
    assert_eq!(
        shown,
        [
            "crate::a::b",
            "crate::a::c",
            "crate::a::c::D",
            "super::e::g"
        ]
    );
}

/// Production functions and their length in lines: (file, name, first line, lines).
fn functions(s: &Source) -> Vec<(String, usize, usize)> {
    let b = s.code.as_bytes();
    let line_of = |pos: usize| b[..pos].iter().filter(|c| **c == b'\n').count() + 1;
    let mut v = Vec::new();
    let mut from = 0;
    while let Some(pos) = find(b, b"fn ", from) {
        from = pos + 3;
        if pos > 0 && (b[pos - 1].is_ascii_alphanumeric() || b[pos - 1] == b'_') {
            continue;
        }
        let name: String = s.code[pos + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue;
        }
        let mut k = pos;
        while k < b.len() && b[k] != b'{' && b[k] != b';' {
            k += 1;
        }
        if k >= b.len() || b[k] == b';' {
            continue;
        }
        let end = matching_brace(b, k);
        let (first, last) = (line_of(pos), line_of(end - 1));
        v.push((name, first, last - first + 1));
    }
    v
}

#[test]
fn production_functions_are_short() {
    let (_, srcs) = sources();
    let mut long = Vec::new();
    let mut seen_allowed = BTreeSet::new();
    for s in &srcs {
        for (name, line, n) in functions(s) {
            if n <= FN_LINES_MAX {
                continue;
            }
            if let Some(a) = LONG_FNS.iter().find(|(f, g, _)| *f == s.file && *g == name) {
                seen_allowed.insert((a.0, a.1));
                continue;
            }
            long.push(format!("{}:{line}: fn {name} is {n} lines", s.file));
        }
    }
    assert!(
        long.is_empty(),
        "functions over {FN_LINES_MAX} lines (split them, or add them to LONG_FNS with a reason):\n{}",
        long.join("\n")
    );
    for (f, g, _) in LONG_FNS {
        assert!(
            seen_allowed.contains(&(*f, *g)),
            "LONG_FNS lists {f} {g}, which is no longer long (or no longer exists): drop it"
        );
    }
}
