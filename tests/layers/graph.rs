//! Cycles in the module graph: strongly connected components (Tarjan) and
//! the shortest cycle an edge closes, for the report.

use std::collections::{BTreeMap, BTreeSet};

pub type Graph = BTreeMap<String, BTreeSet<String>>;

/// Components with more than one module, each sorted, in a stable order.
pub fn cyclic_components(graph: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.out.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    let nodes: BTreeSet<&str> = graph
        .iter()
        .flat_map(|(k, vs)| std::iter::once(k.as_str()).chain(vs.iter().map(String::as_str)))
        .collect();
    for v in nodes {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.out.sort();
    t.out
}

/// The shortest cycle through the edge `from` → `to`, if the edge closes
/// one: `[from, to, …]` (back to `from`).
pub fn shortest_cycle_through(graph: &Graph, from: &str, to: &str) -> Option<Vec<String>> {
    // Breadth-first from `to` back to `from`.
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([to]);
    while let Some(v) = queue.pop_front() {
        if v == from {
            let mut path = vec![from.to_string()];
            let mut at = from;
            while at != to {
                at = came_from[at];
                path.push(at.to_string());
            }
            path.reverse();
            // path is to … from; the cycle starts at from.
            path.rotate_right(1);
            return Some(path);
        }
        for w in graph.get(v).into_iter().flatten() {
            if w != to && !came_from.contains_key(w.as_str()) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> Graph {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
        }
        g
    }

    #[test]
    fn finds_components_and_cycles() {
        let g = graph(&[
            ("a", "b"),
            ("b", "a"),
            ("b", "c"),
            ("c", "d"),
            ("d", "b"),
            ("e", "a"),
        ]);
        assert_eq!(cyclic_components(&g), vec![vec!["a", "b", "c", "d"]]);
        assert_eq!(
            shortest_cycle_through(&g, "a", "b").unwrap(),
            vec!["a", "b"]
        );
        assert_eq!(
            shortest_cycle_through(&g, "c", "d").unwrap(),
            vec!["c", "d", "b"]
        );
        assert_eq!(shortest_cycle_through(&g, "e", "a"), None);
        assert!(cyclic_components(&graph(&[("a", "b"), ("b", "c")])).is_empty());
    }
}
