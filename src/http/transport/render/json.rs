//! JSON refusals. The HTTPS faces (partner API) answer
//! `{"message","errors":[{"errorCode","description"}],"trackingId"}` with
//! the table's summary; the operator API on the ops listener answers the
//! same shape with the reason alone and no TrackingID (that listener has
//! none).

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;
use serde_json::{json, Value};

use super::status_of;
use crate::domain::Refusal;
use crate::http::ResponseBody;

/// Body of a whole-request refusal on an HTTPS listener.
pub fn api_body(refusal: &Refusal, tracking_id: &str) -> String {
    let summary = refusal.summary();
    json!({
        "message": summary,
        "errors": [{"errorCode": refusal.code.code(), "description": summary}],
        "trackingId": tracking_id,
    })
    .to_string()
}

/// An operator API refusal, with the table's status.
pub fn operator(refusal: &Refusal) -> Response<ResponseBody> {
    let message = refusal.message();
    operator_with(
        refusal,
        vec![json!({"errorCode": refusal.code.code(), "description": message})],
    )
}

/// An operator API refusal listing several problems (one per row of an
/// import, say) under the refusal's message.
pub fn operator_with(refusal: &Refusal, errors: Vec<Value>) -> Response<ResponseBody> {
    let body = json!({"message": refusal.message(), "errors": errors});
    let mut resp = Response::new(ResponseBody::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status_of(refusal);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
