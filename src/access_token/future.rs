use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{HeaderValue, Response};
use pin_project_lite::pin_project;

use crate::dpop::{DpopError, SharedClaim};

/// Calls the inner service once the shared replay store has said yes.
pub(crate) type Then<F> = Box<dyn FnOnce() -> F + Send>;

/// The rejection when it has said no (or failed).
pub(crate) type Reject<B> = Box<dyn FnOnce(DpopError) -> Response<B> + Send>;

pin_project! {
    /// The response future of [`RequireAccessToken`](super::RequireAccessToken): the inner
    /// service's future, or a ready rejection; with a shared DPoP replay
    /// store, first the store's verdict on the proof.
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
        Claiming {
            claim: SharedClaim,
            then: Option<Then<F>>,
            reject: Option<Reject<B>>,
            dpop_nonce: Option<HeaderValue>,
        },
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

    /// Waits for `claim`, then calls `then` (or answers with `reject`).
    pub(crate) fn claiming(
        claim: SharedClaim,
        then: Then<F>,
        reject: Reject<B>,
        dpop_nonce: Option<HeaderValue>,
    ) -> Self {
        Self {
            kind: Kind::Claiming {
                claim,
                then: Some(then),
                reject: Some(reject),
                dpop_nonce,
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            // The first two arms are every Bearer request's; the third
            // (a shared replay store's verdict) turns into one of them.
            let next = match self.as_mut().project().kind.project() {
                KindProj::Authorized { future, dpop_nonce } => {
                    let mut result = ready!(future.poll(cx));
                    if let Some(nonce) = dpop_nonce.take()
                        && let Ok(response) = &mut result
                    {
                        response
                            .headers_mut()
                            .insert(crate::dpop::NONCE_HEADER, nonce);
                    }
                    return Poll::Ready(result);
                }
                KindProj::Rejected { response } => {
                    return Poll::Ready(Ok(response.take().expect("polled after completion")));
                }
                KindProj::Claiming {
                    claim,
                    then,
                    reject,
                    dpop_nonce,
                } => settle(claim, then, reject, dpop_nonce, cx),
            };
            match next {
                Poll::Ready(next) => self.as_mut().project().kind.set(next),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// The state after the shared replay store's verdict: authorized (the
/// inner service called) or rejected.
#[cold]
fn settle<F, B>(
    claim: &mut SharedClaim,
    then: &mut Option<Then<F>>,
    reject: &mut Option<Reject<B>>,
    dpop_nonce: &mut Option<HeaderValue>,
    cx: &mut Context<'_>,
) -> Poll<Kind<F, B>> {
    Poll::Ready(match ready!(claim.as_mut().poll(cx)) {
        Ok(()) => Kind::Authorized {
            future: then.take().expect("polled after completion")(),
            dpop_nonce: dpop_nonce.take(),
        },
        Err(e) => Kind::Rejected {
            response: Some(reject.take().expect("polled after completion")(e)),
        },
    })
}
