//! The module layer rules (issue 11), checked on every `cargo test`
//! (`cargo test --test layers` alone takes a second).
//!
//! Reads `src/**/*.rs` from `src/lib.rs` down the `mod` tree, collects
//! every reference from one top-level module to another (`use crate::…`,
//! `super::…` reaching the crate root, inline paths such as
//! `crate::notify::EmailKind`, and `app.store`), and checks the rules in
//! `rules.rs`. A violation not listed there as a debt fails; so does a
//! listed debt that no longer exists (the list only shrinks). Run with
//! `-- --nocapture` to see the graph, its cycles and the debts.

mod graph;
mod rules;
mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use graph::Graph;
use rules::Debt;
use source::{Crate, How};

/// All non-test references from one top-level module to another.
#[derive(Debug, Clone, Default)]
struct Edge {
    count: usize,
    /// `file:line` of the first one.
    first: String,
    via_app_store: bool,
}

type Edges = BTreeMap<(String, String), Edge>;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Problem {
    /// A top-level module missing from `LAYERS`.
    UnplacedModule(String),
    /// An edge breaking rules, not a listed debt.
    NewViolation {
        from: String,
        to: String,
        rules: Vec<String>,
        at: String,
    },
    /// A listed debt whose edge no longer breaks a rule.
    PaidDebt { from: String, to: String },
    /// A store-only crate named elsewhere.
    CrateOutsideStore {
        krate: String,
        module: String,
        at: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::UnplacedModule(m) => write!(
                f,
                "top-level module `{m}` is in no layer: add it to LAYERS in tests/layers/rules.rs \
                 (above every module it uses, below every module using it)"
            ),
            Problem::NewViolation {
                from,
                to,
                rules,
                at,
            } => write!(
                f,
                "NEW violation {from} -> {to} (first at {at}): {}. Remove the reference; \
                 the rules are in tests/layers/rules.rs",
                rules.join("; ")
            ),
            Problem::PaidDebt { from, to } => write!(
                f,
                "debt {from} -> {to} is paid (the edge no longer breaks a rule): \
                 delete its line from DEBTS in tests/layers/rules.rs"
            ),
            Problem::CrateOutsideStore { krate, module, at } => write!(
                f,
                "`{krate}` named in `{module}` at {at}: only store may use it"
            ),
        }
    }
}

fn layer_of(module: &str) -> Option<usize> {
    rules::LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
}

/// The rules the edge `from` → `to` breaks (empty: allowed).
fn broken_rules(from: &str, to: &str) -> Vec<String> {
    let mut broken = Vec::new();
    if let (Some(a), Some(b)) = (layer_of(from), layer_of(to)) {
        if a < b {
            broken.push(format!(
                "a lower layer uses a higher one ({from} is in layer {a}, {to} in layer {b})"
            ));
        } else if a == b {
            broken.push(format!("modules of one layer ({a}) use each other"));
        }
    }
    if from == "domain" && !rules::DOMAIN_MAY_IMPORT.contains(&to) {
        broken.push("domain imports only domain".into());
    }
    if from == "store" && !rules::STORE_MAY_IMPORT.contains(&to) {
        broken.push(format!(
            "store imports only {}",
            rules::STORE_MAY_IMPORT.join(", ")
        ));
    }
    if rules::FACES.contains(&from) && to == "store" {
        broken.push("faces never use store".into());
    }
    broken
}

fn edges_of(krate: &Crate, root: &Path) -> Edges {
    let mut edges = Edges::new();
    for r in krate.references.iter().filter(|r| !r.test) {
        let edge = edges.entry((r.from.clone(), r.to.clone())).or_default();
        if edge.count == 0 {
            let file = r.file.strip_prefix(root).unwrap_or(&r.file);
            edge.first = format!("{}:{}", file.display(), r.line);
        }
        edge.count += 1;
        edge.via_app_store |= r.how == How::AppStore;
    }
    edges
}

fn check(
    modules: &BTreeSet<String>,
    edges: &Edges,
    crate_mentions: &[(String, String, String)],
    debts: &[Debt],
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for m in modules {
        if layer_of(m).is_none() {
            problems.push(Problem::UnplacedModule(m.clone()));
        }
    }
    let is_debt = |from: &str, to: &str| debts.iter().any(|d| d.from == from && d.to == to);
    for ((from, to), edge) in edges {
        let broken = broken_rules(from, to);
        if !broken.is_empty() && !is_debt(from, to) {
            problems.push(Problem::NewViolation {
                from: from.clone(),
                to: to.clone(),
                rules: broken,
                at: edge.first.clone(),
            });
        }
    }
    for d in debts {
        let exists = edges.contains_key(&(d.from.to_string(), d.to.to_string()));
        if !exists || broken_rules(d.from, d.to).is_empty() {
            problems.push(Problem::PaidDebt {
                from: d.from.into(),
                to: d.to.into(),
            });
        }
    }
    for (krate, module, at) in crate_mentions {
        if module != "store" {
            problems.push(Problem::CrateOutsideStore {
                krate: krate.clone(),
                module: module.clone(),
                at: at.clone(),
            });
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

fn graph_of(edges: &Edges) -> Graph {
    let mut g = Graph::new();
    for (from, to) in edges.keys() {
        g.entry(from.clone()).or_default().insert(to.clone());
    }
    g
}

/// The real crate, read once per test.
fn read_crate() -> (Crate, Edges, Vec<(String, String, String)>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let krate = Crate::read(root, rules::STORE_ONLY_CRATES);
    let edges = edges_of(&krate, root);
    let mentions = krate
        .mentions
        .iter()
        .map(|(c, m)| {
            let file = m.file.strip_prefix(root).unwrap_or(&m.file);
            (
                c.clone(),
                m.module.clone(),
                format!("{}:{}", file.display(), m.line),
            )
        })
        .collect();
    (krate, edges, mentions)
}

fn report(krate: &Crate, edges: &Edges) -> String {
    let mut out = String::new();
    out += &format!(
        "{} files, {} top-level modules, {} module edges ({} references; test-only code skipped)\n",
        krate.files.len(),
        krate.top_modules.len(),
        edges.len(),
        edges.values().map(|e| e.count).sum::<usize>()
    );
    for (i, layer) in rules::LAYERS.iter().enumerate().rev() {
        out += &format!("layer {i}: {}\n", layer.join(", "));
        for m in layer.iter() {
            let uses: Vec<String> = edges
                .iter()
                .filter(|((from, _), _)| from == m)
                .map(|((_, to), e)| {
                    let mark = if broken_rules(m, to).is_empty() {
                        ""
                    } else {
                        "!"
                    };
                    let app = if e.via_app_store {
                        " incl. app.store"
                    } else {
                        ""
                    };
                    format!("{mark}{to}({}{app})", e.count)
                })
                .collect();
            if !uses.is_empty() {
                out += &format!("    {m} -> {}\n", uses.join(" "));
            }
        }
    }
    let g = graph_of(edges);
    let components = graph::cyclic_components(&g);
    out += &format!(
        "cycles: {} tangle(s) of modules that import each other in a circle\n",
        components.len()
    );
    for c in &components {
        out += &format!("  tangle: {}\n", c.join(", "));
    }
    out += &format!(
        "debts ({}, marked ! above), each with the shortest cycle it closes:\n",
        rules::DEBTS.len()
    );
    for d in rules::DEBTS {
        out += &format!("  {} -> {}: {}\n", d.from, d.to, d.why);
        if let Some(cycle) = graph::shortest_cycle_through(&g, d.from, d.to) {
            out += &format!("      cycle: {} -> {}\n", cycle.join(" -> "), d.from);
        }
    }
    out
}

#[test]
fn layer_rules_hold_except_listed_debts() {
    let (krate, edges, mentions) = read_crate();
    assert!(
        krate.top_modules.contains("store") && krate.files.len() > 50,
        "the scan found too little: {} files, modules {:?}",
        krate.files.len(),
        krate.top_modules
    );
    let report = report(&krate, &edges);
    println!("{report}");
    let problems = check(&krate.top_modules, &edges, &mentions, rules::DEBTS);
    assert!(
        problems.is_empty(),
        "layer rules:\n{}\n\n{report}",
        problems
            .iter()
            .map(|p| format!("- {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_cycle_contains_a_debt() {
    // The layers rule out cycles among allowed edges; this says so on the
    // real graph: without the debts, no module tangle is left.
    let (_, edges, _) = read_crate();
    let mut allowed = edges.clone();
    allowed.retain(|(from, to), _| !rules::DEBTS.iter().any(|d| d.from == from && d.to == to));
    let left = graph::cyclic_components(&graph_of(&allowed));
    assert!(left.is_empty(), "cycles without a debt edge: {left:?}");
}

#[test]
fn debts_are_listed_once_and_name_placed_modules() {
    let mut seen = BTreeSet::new();
    for d in rules::DEBTS {
        assert!(
            seen.insert((d.from, d.to)),
            "debt {} -> {} listed twice",
            d.from,
            d.to
        );
        assert!(
            layer_of(d.from).is_some() && layer_of(d.to).is_some(),
            "{d:?}"
        );
        assert!(!d.why.is_empty(), "{d:?} needs a reason");
    }
}

#[test]
fn the_check_fails_on_new_violations_and_paid_debts() {
    let (krate, edges, mentions) = read_crate();
    let clean = check(&krate.top_modules, &edges, &mentions, rules::DEBTS);
    let edge_at = |from: &str, to: &str, at: &str| {
        let mut e = edges.clone();
        e.insert(
            (from.into(), to.into()),
            Edge {
                count: 1,
                first: at.into(),
                via_app_store: false,
            },
        );
        check(&krate.top_modules, &e, &mentions, rules::DEBTS)
    };
    let new_violation = |from: &str, to: &str| Problem::NewViolation {
        from: from.into(),
        to: to.into(),
        rules: broken_rules(from, to),
        at: "src/x.rs:1".into(),
    };
    // Each forbidden kind of import, added to the real graph, is reported.
    for (from, to) in [
        ("domain", "store"),      // domain imports only domain
        ("store", "provision"),   // store imports only domain, commands, config
        ("flowthrough", "store"), // faces never use store
        ("provision", "http"),    // upward: would close a cycle
        ("serve", "tools"),       // the service never uses tooling
        ("xsi", "flowthrough"),   // fine today: not reported
    ] {
        let problems = edge_at(from, to, "src/x.rs:1");
        let reported = problems.contains(&new_violation(from, to));
        let forbidden = !broken_rules(from, to).is_empty();
        assert_eq!(reported, forbidden, "{from} -> {to}: {problems:?}");
        assert_eq!(
            problems.len(),
            clean.len() + usize::from(forbidden),
            "{problems:?}"
        );
    }
    // A debt whose edge is gone is reported as paid (any listed debt: the
    // list shrinks as they are paid; with none left, one made up here).
    let made_up = [Debt {
        from: "store",
        to: "notify",
        why: "stands in for a listed debt",
    }];
    let debts = if rules::DEBTS.is_empty() {
        &made_up[..]
    } else {
        rules::DEBTS
    };
    let paid = debts[0];
    let mut without = edges.clone();
    without.remove(&(paid.from.to_string(), paid.to.to_string()));
    let problems = check(&krate.top_modules, &without, &mentions, debts);
    assert!(problems.contains(&Problem::PaidDebt {
        from: paid.from.into(),
        to: paid.to.into()
    }));
    // rusqlite outside store, and a module in no layer.
    let mut named = mentions.clone();
    named.push(("rusqlite".into(), "http".into(), "src/http/x.rs:3".into()));
    let mut modules = krate.top_modules.clone();
    modules.insert("postgres".into());
    let problems = check(&modules, &edges, &named, rules::DEBTS);
    assert!(problems.contains(&Problem::UnplacedModule("postgres".into())));
    assert!(problems
        .iter()
        .any(|p| matches!(p, Problem::CrateOutsideStore { module, .. } if module == "http")));
}
