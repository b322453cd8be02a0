use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::{HeaderValue, Response};
use pin_project_lite::pin_project;

pin_project! {
    /// The response future of [`AccessToken`](super::AccessToken): the inner
    /// service's future, or a ready rejection.
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Authorized { #[pin] future: F, dpop_nonce: Option<HeaderValue> },
        Rejected { response: Option<Response<B>> },
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn authorized(future: F, dpop_nonce: Option<HeaderValue>) -> Self {
        Self {
            kind: Kind::Authorized { future, dpop_nonce },
        }
    }

    pub(crate) fn rejected(response: Response<B>) -> Self {
        Self {
            kind: Kind::Rejected {
                response: Some(response),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Authorized { future, dpop_nonce } => {
                let mut result = std::task::ready!(future.poll(cx));
                if let (Ok(response), Some(nonce)) = (&mut result, dpop_nonce.take()) {
                    response.headers_mut().insert("dpop-nonce", nonce);
                }
                Poll::Ready(result)
            }
            KindProj::Rejected { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
        }
    }
}
