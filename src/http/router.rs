//! Route table of the HTTPS listener. A route's label is its template (not
//! the raw path) so metrics stay bounded whatever clients send.

use hyper::Method;

use super::error::ErrorFormat;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: service identity and the caller's TLS identity.
    Root,
    NotFound,
    MethodNotAllowed {
        allow: &'static str,
        format: ErrorFormat,
    },
}

impl Route {
    pub fn label(&self) -> &'static str {
        match self {
            Route::Root => "/",
            Route::NotFound => "unmatched",
            Route::MethodNotAllowed { .. } => "method_not_allowed",
        }
    }

    /// Error body format for this route's face.
    pub fn error_format(&self) -> ErrorFormat {
        match self {
            Route::MethodNotAllowed { format, .. } => *format,
            _ => ErrorFormat::XsiXml,
        }
    }
}

pub fn route(method: &Method, path: &str) -> Route {
    match path {
        "/" => match *method {
            Method::GET | Method::HEAD => Route::Root,
            _ => Route::MethodNotAllowed {
                allow: "GET, HEAD",
                format: ErrorFormat::Json,
            },
        },
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_paths_and_methods_are_classified() {
        assert_eq!(route(&Method::GET, "/"), Route::Root);
        assert_eq!(route(&Method::GET, "/nope"), Route::NotFound);
        assert!(matches!(
            route(&Method::POST, "/"),
            Route::MethodNotAllowed { .. }
        ));
    }
}
