//! Building XSI trees: elements in the XSI namespace, with text or
//! children (what the Xsi-Actions and Xsi-Events writers share).

use super::document::{Element, XSI_NAMESPACE};

/// An empty element in the XSI namespace.
pub(crate) fn xsi(name: &str) -> Element {
    Element {
        namespace: Some(XSI_NAMESPACE.into()),
        ..Element::new(name)
    }
}

/// An XSI element holding `value`.
pub(crate) fn text(name: &str, value: &str) -> Element {
    Element {
        text: value.into(),
        ..xsi(name)
    }
}

/// An XSI element holding `children`.
pub(crate) fn parent(name: &str, children: Vec<Element>) -> Element {
    Element {
        children,
        ..xsi(name)
    }
}

/// Appends `<name>value</name>` when there is a value.
pub(crate) fn push_some(out: &mut Vec<Element>, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        out.push(text(name, v));
    }
}
