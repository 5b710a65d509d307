//! XSI documents as JSON, in the BadgerFish convention Xsi-Actions uses
//! for `?format=json` and `Accept: application/json` (Xsi spec R21
//! §3.3.3.1):
//!
//! ```text
//! {"DoNotDisturb":{"@xmlns":{"$":"http://schema.broadsoft.com/xsi"},
//!   "isActive":{"$":"true"},"ringSplash":{"$":"true"}}}
//! ```
//!
//! - The document is an object with one member, the root's name.
//! - An element is an object: its text (when not empty) as a string in
//!   `"$"`; each attribute as `"@name": "value"`; its namespace, when it
//!   differs from its parent's (always for the root, when it has one), as
//!   `"@xmlns": {"$": "<namespace>"}` (`""` for an element without
//!   namespace inside one with a namespace, as `to_xml` writes
//!   `xmlns=""`); each child name as a member: an object when the name
//!   appears once, an array of objects in document order when it appears
//!   more than once.
//! - An element with nothing of the above is `{}`.
//! - A nil element (`xsi:nil="true"`) carries `"@xsi:nil": "true"` (the
//!   attribute as BadgerFish writes any prefixed attribute; the
//!   `xmlns:xsi` binding is not repeated in `"@xmlns"`), besides its
//!   namespace when that changes: `{"@xsi:nil": "true"}` in a document
//!   with one namespace.
//!
//! Text between child elements is not kept by the tree, so mixed content
//! has one `"$"`. `serde_json` orders members by name (no
//! `preserve_order`): JSON objects are unordered, and arrays keep the
//! order of repeated children.

use serde_json::{Map, Value};

use super::document::Element;

/// The BadgerFish JSON of a document.
pub fn to_badgerfish(root: &Element) -> Value {
    let mut doc = Map::new();
    doc.insert(root.name.clone(), element(root, None));
    Value::Object(doc)
}

fn element(el: &Element, parent_namespace: Option<&str>) -> Value {
    let mut obj = Map::new();
    let namespace = el.namespace.as_deref();
    if namespace != parent_namespace {
        let mut ns = Map::new();
        ns.insert("$".into(), Value::String(namespace.unwrap_or("").into()));
        obj.insert("@xmlns".into(), Value::Object(ns));
    }
    if el.nil {
        obj.insert("@xsi:nil".into(), Value::String("true".into()));
    }
    for (name, value) in &el.attributes {
        obj.insert(format!("@{name}"), Value::String(value.clone()));
    }
    if !el.text.is_empty() {
        obj.insert("$".into(), Value::String(el.text.clone()));
    }
    // Children grouped by name, in the order each name first appears.
    let mut names: Vec<&str> = Vec::new();
    for child in &el.children {
        if !names.contains(&child.name.as_str()) {
            names.push(&child.name);
        }
    }
    for name in names {
        let mut values: Vec<Value> = el
            .children_named(name)
            .map(|c| element(c, namespace))
            .collect();
        let value = if values.len() == 1 {
            values.swap_remove(0)
        } else {
            Value::Array(values)
        };
        obj.insert(name.to_owned(), value);
    }
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::xsi::document::{parse_str, XsiLimits, XSI_NAMESPACE};

    fn xsi(name: &str) -> Element {
        Element {
            namespace: Some(XSI_NAMESPACE.into()),
            ..Element::new(name)
        }
    }

    fn text(name: &str, text: &str) -> Element {
        Element {
            text: text.into(),
            ..xsi(name)
        }
    }

    #[test]
    fn the_spec_example() {
        let dnd = Element {
            children: vec![text("isActive", "true"), text("ringSplash", "true")],
            ..xsi("DoNotDisturb")
        };
        let expected: Value = serde_json::from_str(
            r#"{"DoNotDisturb":{"@xmlns":{"$":"http://schema.broadsoft.com/xsi"},"isActive":{"$":"true"},"ringSplash":{"$":"true"}}}"#,
        )
        .unwrap();
        assert_eq!(to_badgerfish(&dnd), expected);
    }

    #[test]
    fn repeated_children_become_arrays_in_order() {
        let doc = parse_str(
            r#"<Services xmlns="http://schema.broadsoft.com/xsi">
                 <service><name>A</name><uri>/a</uri></service>
                 <total>2</total>
                 <service><name>B</name></service>
               </Services>"#,
            &XsiLimits::default(),
        )
        .unwrap();
        assert_eq!(
            to_badgerfish(&doc),
            json!({"Services": {
                "@xmlns": {"$": XSI_NAMESPACE},
                "service": [
                    {"name": {"$": "A"}, "uri": {"$": "/a"}},
                    {"name": {"$": "B"}}
                ],
                "total": {"$": "2"}
            }})
        );
        let one = Element {
            children: vec![Element {
                children: vec![text("name", "A")],
                ..xsi("service")
            }],
            ..xsi("Services")
        };
        assert_eq!(
            to_badgerfish(&one)["Services"]["service"],
            json!({"name": {"$": "A"}}),
            "a name that appears once is an object, not an array"
        );
    }

    #[test]
    fn attributes_text_and_empty_elements() {
        let doc = parse_str(
            r#"<Profile xmlns="http://schema.broadsoft.com/xsi"><details><serviceProvider isEnterprise="false" x="a&amp;b">sp1</serviceProvider><number/></details></Profile>"#,
            &XsiLimits::default(),
        )
        .unwrap();
        assert_eq!(
            to_badgerfish(&doc),
            json!({"Profile": {
                "@xmlns": {"$": XSI_NAMESPACE},
                "details": {
                    "serviceProvider": {"@isEnterprise": "false", "@x": "a&b", "$": "sp1"},
                    "number": {}
                }
            }})
        );
        assert_eq!(to_badgerfish(&Element::new("x")), json!({"x": {}}));
    }

    #[test]
    fn nil_elements_carry_xsi_nil() {
        let doc = parse_str(
            r#"<additionalDetails xmlns="http://schema.broadsoft.com/xsi" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><mobile i:nil="true"/><emailAddress>a@b.example</emailAddress></additionalDetails>"#,
            &XsiLimits::default(),
        )
        .unwrap();
        assert_eq!(
            to_badgerfish(&doc)["additionalDetails"],
            json!({
                "@xmlns": {"$": XSI_NAMESPACE},
                "mobile": {"@xsi:nil": "true"},
                "emailAddress": {"$": "a@b.example"}
            })
        );
    }

    #[test]
    fn namespaces_appear_where_they_change() {
        let doc = parse_str(
            r#"<Event xmlns="http://schema.broadsoft.com/xsi"><a><b xmlns="urn:other"><c>1</c></b><d xmlns="">2</d></a></Event>"#,
            &XsiLimits::default(),
        )
        .unwrap();
        assert_eq!(
            to_badgerfish(&doc),
            json!({"Event": {
                "@xmlns": {"$": XSI_NAMESPACE},
                "a": {
                    "b": {"@xmlns": {"$": "urn:other"}, "c": {"$": "1"}},
                    "d": {"@xmlns": {"$": ""}, "$": "2"}
                }
            }})
        );
        // A root without a namespace declares none.
        let bare = parse_str("<a><b>1</b></a>", &XsiLimits::default()).unwrap();
        assert_eq!(to_badgerfish(&bare), json!({"a": {"b": {"$": "1"}}}));
    }

    #[test]
    fn text_is_a_string_even_when_it_looks_like_a_number() {
        let doc = text("startIndex", "1");
        assert_eq!(to_badgerfish(&doc)["startIndex"]["$"], json!("1"));
    }
}
