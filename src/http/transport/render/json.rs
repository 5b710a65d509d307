//! JSON refusals. The HTTPS faces (partner API) answer
//! `{"message","errors":[{"errorCode","description"}],"trackingId"}` with
//! the table's summary; the operator API on the ops listener answers the
//! same shape with the reason alone and no TrackingID (that listener has
//! none).

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
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
    if let Some(secs) = refusal.retry_after {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ErrorCode;
    use http_body_util::BodyExt;

    async fn body_of(resp: Response<ResponseBody>) -> Value {
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn operator_refusals_take_status_code_and_retry_after_from_the_refusal() {
        let r = Refusal::new(ErrorCode::ServerBusy, "full").retry_after(1);
        let resp = operator(&r);
        assert_eq!(resp.status().as_u16(), 503);
        assert_eq!(resp.headers()[RETRY_AFTER], "1");
        assert_eq!(resp.headers()[CONTENT_TYPE], "application/json");
        let v = body_of(resp).await;
        assert_eq!(v["message"], "full");
        assert_eq!(v["errors"][0]["errorCode"], 9036);
        assert!(v.get("trackingId").is_none());
        let bare = operator(&Refusal::bare(ErrorCode::NotFound));
        assert_eq!(bare.status().as_u16(), 404);
        assert!(!bare.headers().contains_key(RETRY_AFTER));
        assert_eq!(body_of(bare).await["message"], "No such resource.");
    }
}
