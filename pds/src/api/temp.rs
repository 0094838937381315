//! `com.atproto.temp`: `checkSignupQueue` (this server has no signup
//! queue: every account is activated at once).

use atproto_types::lexicons::com::atproto::temp::{check_signup_queue, ComAtprotoTemp};
use atproto_types::xrpc::{NotImplemented, XrpcError, XrpcRequest};

use crate::auth::AccessStandardDeactivatedOk;
use crate::state::AppState;

impl ComAtprotoTemp for AppState {
    type AddReservedHandleAuth = NotImplemented;
    type CheckHandleAvailabilityAuth = NotImplemented;
    type CheckSignupQueueAuth = AccessStandardDeactivatedOk;
    type DereferenceScopeAuth = NotImplemented;
    type FetchLabelsAuth = NotImplemented;
    type RequestPhoneVerificationAuth = NotImplemented;
    type RevokeAccountCredentialsAuth = NotImplemented;

    async fn check_signup_queue(
        &self,
        _: AccessStandardDeactivatedOk,
        _: XrpcRequest<check_signup_queue::Params, ()>,
    ) -> Result<check_signup_queue::Output, XrpcError<check_signup_queue::Error>> {
        Ok(check_signup_queue::Output {
            activated: true,
            estimated_time_ms: None,
            place_in_queue: None,
            extra_data: Default::default(),
        })
    }
}
