//! The body of every response: whole (`ResponseBody::new`), or a stream
//! of chunks (`ResponseBody::streaming`) for Xsi-Events channels, where
//! each chunk is one XML document sent as it comes. A stream ends when its
//! sender is dropped (channel closed, expired, or the server shutting
//! down); what it holds (`hold`) is dropped with it.

use std::any::Any;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

pub struct ResponseBody {
    kind: Kind,
}

enum Kind {
    Whole(Option<Bytes>),
    Stream {
        chunks: mpsc::Receiver<Bytes>,
        /// Kept while the stream lasts (e.g. the connection's "request in
        /// progress" mark, so a streaming connection is never idle).
        held: Vec<Box<dyn Any + Send + Sync>>,
    },
}

impl ResponseBody {
    /// A whole body (empty bytes: no body).
    pub fn new(bytes: Bytes) -> ResponseBody {
        ResponseBody {
            kind: Kind::Whole((!bytes.is_empty()).then_some(bytes)),
        }
    }

    /// A body sent chunk by chunk as `chunks` yields them (HTTP/1.1
    /// chunked encoding, HTTP/2 DATA frames).
    pub fn streaming(chunks: mpsc::Receiver<Bytes>) -> ResponseBody {
        ResponseBody {
            kind: Kind::Stream {
                chunks,
                held: Vec::new(),
            },
        }
    }

    pub fn is_streaming(&self) -> bool {
        matches!(self.kind, Kind::Stream { .. })
    }

    /// Keeps `value` alive as long as the stream (nothing for a whole body:
    /// it is dropped with the response).
    pub fn hold(&mut self, value: impl Any + Send + Sync) {
        if let Kind::Stream { held, .. } = &mut self.kind {
            held.push(Box::new(value));
        }
    }
}

impl Default for ResponseBody {
    fn default() -> Self {
        ResponseBody::new(Bytes::new())
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().kind {
            Kind::Whole(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream { chunks, .. } => chunks
                .poll_recv(cx)
                .map(|chunk| chunk.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Whole(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Kind::Stream { .. } => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_whole_body_has_an_exact_size_and_one_frame() {
        let body = ResponseBody::new(Bytes::from_static(b"hello"));
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(!body.is_end_stream());
        assert_eq!(
            body.collect().await.map(|c| c.to_bytes()).ok(),
            Some(Bytes::from_static(b"hello"))
        );
        let empty = ResponseBody::new(Bytes::new());
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
    }

    #[tokio::test]
    async fn a_stream_yields_each_chunk_and_ends_when_its_sender_goes() {
        let (tx, rx) = mpsc::channel(4);
        let mut body = ResponseBody::streaming(rx);
        assert!(body.is_streaming());
        assert_eq!(body.size_hint().exact(), None);
        let held = std::sync::Arc::new(());
        body.hold(held.clone());
        tx.send(Bytes::from_static(b"<a/>")).await.ok();
        tx.send(Bytes::from_static(b"<b/>")).await.ok();
        let first = body
            .frame()
            .await
            .and_then(|f| f.ok())
            .and_then(|f| f.into_data().ok());
        assert_eq!(first, Some(Bytes::from_static(b"<a/>")));
        drop(tx);
        let second = body
            .frame()
            .await
            .and_then(|f| f.ok())
            .and_then(|f| f.into_data().ok());
        assert_eq!(second, Some(Bytes::from_static(b"<b/>")));
        assert!(body.frame().await.is_none(), "ended");
        assert_eq!(
            std::sync::Arc::strong_count(&held),
            2,
            "held while the body lives"
        );
        drop(body);
        assert_eq!(std::sync::Arc::strong_count(&held), 1);
    }
}
