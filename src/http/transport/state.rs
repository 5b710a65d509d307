//! What every HTTPS listener shares besides the [`App`]: the transport's
//! own guards (flow-through rate limit, wrong-credential lockout, the
//! process-wide body budget) and the partner token cache. Built once by
//! start-up for all listeners, so `app` knows nothing of HTTP.

use std::ops::Deref;
use std::sync::Arc;

use crate::app::App;
use crate::http::body_budget::{BodyBudget, BudgetScope};
use crate::http::lockout::Lockout;
use crate::http::partner::auth::PartnerAuth;
use crate::http::ratelimit::RateLimiter;
use crate::http::xsi::XsiState;
use crate::tokens::TokenIssuer;

pub struct State {
    pub app: Arc<App>,
    /// Flow-through request rate limit (`limits.rate_per_sec`).
    pub rate_limiter: RateLimiter,
    /// Wrong-credential counts and locks (`limits.auth_*`).
    pub lockout: Lockout,
    /// Partner admin tokens, verified once per process (status page, API).
    pub partner_auth: PartnerAuth,
    /// Request bodies buffered at once, every listener
    /// (`limits.max_buffered_body_bytes`).
    pub body_budget: BodyBudget,
    /// The XSI face: token issuer, Basic cache.
    pub xsi: XsiState,
}

impl State {
    /// Without XSI tokens (tests that do not need them).
    pub fn new(app: Arc<App>) -> Arc<State> {
        Self::with_tokens(app, None)
    }

    /// With the XSI token issuer start-up loaded.
    pub fn with_tokens(app: Arc<App>, tokens: Option<Arc<TokenIssuer>>) -> Arc<State> {
        Self::with_xsi(app, tokens, None)
    }

    /// With the XSI token issuer and the Xsi-Events hub start-up made.
    pub fn with_xsi(
        app: Arc<App>,
        tokens: Option<Arc<TokenIssuer>>,
        events: Option<Arc<crate::events::EventHub>>,
    ) -> Arc<State> {
        let limits = &app.config.limits;
        let basic_cache = std::time::Duration::from_secs(app.config.xsi.basic_cache_secs);
        Arc::new(State {
            rate_limiter: RateLimiter::new(limits),
            lockout: Lockout::new(limits),
            partner_auth: PartnerAuth::new(),
            body_budget: BodyBudget::new(limits.max_buffered_body_bytes, BudgetScope::Process),
            xsi: XsiState {
                events,
                ..XsiState::new(tokens, basic_cache)
            },
            app,
        })
    }
}

/// Handlers read the App's fields (`state.queries`, `state.config`) as
/// their own: the state is the App plus the transport's guards.
impl Deref for State {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}
