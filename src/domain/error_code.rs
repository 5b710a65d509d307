//! The one error-code table shared by every face (flow-through XML, XSI,
//! JSON API, portal). Cisco's numbers are kept where they are known; ours
//! live above 9000 and are only added where no known code fits.

/// One row of the error table. `async_possible` says whether the code can
/// also appear later in a subscriber's `errors[]` after a background failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    MissingParameter,
    InvalidParameterSize,
    ExistingOrgNeedsApproval,
    BillingReportNotFound,
    UnderMaintenance,
    UserIdAlreadyAssociated,
    InvalidEmail,
    InvalidPhoneNumber,
    UnknownProvisioningId,
    BadCredentials,
    WholesaleRejected,
    TrunkUserWithRouteList,
    EnterpriseLinkedElsewhere,
    NumberAlreadyAssigned,
    RateLimited,
    DocumentTooLarge,
    MalformedXml,
    ForbiddenXmlConstruct,
    XmlTooComplex,
    UnsupportedMediaType,
    NotFound,
    MethodNotAllowed,
    InvalidParameterValue,
    TooManyOperations,
    ClientCertificateRequired,
    Internal,
    StorageUnavailable,
    ShuttingDown,
    RequestTimeout,
    PartnerNotAdmin,
    ActivationLinkInvalid,
    VerificationCodeInvalid,
    TooManyAttempts,
    AdminNotActive,
    WrongState,
    NewOrgNotAllowed,
    FormTokenInvalid,
    OperatorTokenRequired,
    OperatorRequestForbidden,
    MalformedRequest,
    VerificationBusy,
    ServerBusy,
    TemplateDisabled,
    XsiOtherUser,
    XsiEventLimit,
    XsiTargetForbidden,
    LicenseShortage,
    SubscriptionBelowAssigned,
    CallingWithheld,
    DeviceNotAllowed,
    OperatorOnly,
}

/// Static facts about a code, for documentation and wire mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCodeInfo {
    pub code: u32,
    pub http_status: u16,
    pub summary: &'static str,
    pub async_possible: bool,
}

impl ErrorCode {
    /// Every code, in table order (used by `bwgate errors` and the docs/errors.md test).
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::MissingParameter,
        ErrorCode::InvalidParameterSize,
        ErrorCode::ExistingOrgNeedsApproval,
        ErrorCode::BillingReportNotFound,
        ErrorCode::UnderMaintenance,
        ErrorCode::UserIdAlreadyAssociated,
        ErrorCode::InvalidEmail,
        ErrorCode::InvalidPhoneNumber,
        ErrorCode::UnknownProvisioningId,
        ErrorCode::BadCredentials,
        ErrorCode::WholesaleRejected,
        ErrorCode::TrunkUserWithRouteList,
        ErrorCode::EnterpriseLinkedElsewhere,
        ErrorCode::NumberAlreadyAssigned,
        ErrorCode::RateLimited,
        ErrorCode::DocumentTooLarge,
        ErrorCode::MalformedXml,
        ErrorCode::ForbiddenXmlConstruct,
        ErrorCode::XmlTooComplex,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::InvalidParameterValue,
        ErrorCode::TooManyOperations,
        ErrorCode::ClientCertificateRequired,
        ErrorCode::Internal,
        ErrorCode::StorageUnavailable,
        ErrorCode::ShuttingDown,
        ErrorCode::RequestTimeout,
        ErrorCode::PartnerNotAdmin,
        ErrorCode::ActivationLinkInvalid,
        ErrorCode::VerificationCodeInvalid,
        ErrorCode::TooManyAttempts,
        ErrorCode::AdminNotActive,
        ErrorCode::WrongState,
        ErrorCode::NewOrgNotAllowed,
        ErrorCode::FormTokenInvalid,
        ErrorCode::OperatorTokenRequired,
        ErrorCode::OperatorRequestForbidden,
        ErrorCode::MalformedRequest,
        ErrorCode::VerificationBusy,
        ErrorCode::ServerBusy,
        ErrorCode::TemplateDisabled,
        ErrorCode::XsiOtherUser,
        ErrorCode::XsiEventLimit,
        ErrorCode::XsiTargetForbidden,
        ErrorCode::LicenseShortage,
        ErrorCode::SubscriptionBelowAssigned,
        ErrorCode::CallingWithheld,
        ErrorCode::DeviceNotAllowed,
        ErrorCode::OperatorOnly,
    ];

    pub const fn info(self) -> ErrorCodeInfo {
        use ErrorCode::*;
        let (code, http_status, summary, async_possible) = match self {
            MissingParameter => (1001, 400, "A mandatory parameter is missing.", false),
            InvalidParameterSize => (1002, 400, "A parameter has an invalid size.", false),
            ExistingOrgNeedsApproval => (
                2017,
                409,
                "Unable to provision subscriber in existing Webex organization: an administrator of that organization must approve.",
                true,
            ),
            BillingReportNotFound => (2024, 404, "Billing report not found.", false),
            UnderMaintenance => (2560, 503, "Service under maintenance; retry later.", true),
            UserIdAlreadyAssociated => (
                10022,
                409,
                "BroadWorks user id is already associated with another user.",
                true,
            ),
            InvalidEmail => (9001, 400, "Invalid email address.", false),
            InvalidPhoneNumber => (
                9002,
                400,
                "Invalid phone number: not a number at all, or not E.164 where E.164 is required.",
                false,
            ),
            UnknownProvisioningId => (9003, 404, "Unknown provisioningId.", false),
            BadCredentials => (9004, 401, "Authentication failed.", false),
            WholesaleRejected => (9005, 403, "Wholesale customers cannot be provisioned here.", false),
            TrunkUserWithRouteList => (
                9006,
                422,
                "Trunk users with a route list or direct route cannot be provisioned.",
                false,
            ),
            EnterpriseLinkedElsewhere => (
                9007,
                409,
                "The enterprise or organization is already linked to another organization or enterprise.",
                true,
            ),
            NumberAlreadyAssigned => (9008, 409, "Phone number already assigned.", true),
            RateLimited => (9009, 429, "Too many requests; retry later.", false),
            DocumentTooLarge => (9010, 413, "Request body too large.", false),
            MalformedXml => (9011, 400, "Request document is not well-formed XML.", false),
            ForbiddenXmlConstruct => (
                9012,
                400,
                "DTDs, entity declarations and processing of external entities are not allowed.",
                false,
            ),
            XmlTooComplex => (9013, 400, "Request document exceeds a depth, element, attribute or namespace-declaration limit.", false),
            UnsupportedMediaType => (9014, 415, "Unsupported content type or charset.", false),
            NotFound => (9015, 404, "No such resource.", false),
            MethodNotAllowed => (9016, 405, "Method not allowed on this resource.", false),
            InvalidParameterValue => (9017, 400, "A parameter has an invalid value.", false),
            TooManyOperations => (9018, 413, "Too many operations in one document.", false),
            ClientCertificateRequired => (9019, 403, "A trusted client certificate is required.", false),
            Internal => (9020, 500, "Internal error; the request was not recorded.", true),
            StorageUnavailable => (9021, 503, "Storage unavailable; retry later.", true),
            ShuttingDown => (9022, 503, "Server is shutting down; retry on another node.", false),
            RequestTimeout => (9023, 408, "The request was not received in time.", false),
            PartnerNotAdmin => (
                9024,
                403,
                "The partner is not a full admin of the organization; it cannot detach it.",
                false,
            ),
            ActivationLinkInvalid => (
                9025,
                400,
                "The activation link is not valid, has expired or was already used.",
                false,
            ),
            VerificationCodeInvalid => (
                9026,
                400,
                "The verification code is wrong or has expired.",
                false,
            ),
            TooManyAttempts => (
                9027,
                429,
                "Too many attempts; wait before trying again.",
                false,
            ),
            AdminNotActive => (
                9028,
                409,
                "The organization's first user (its administrator) must activate first.",
                false,
            ),
            WrongState => (
                9029,
                409,
                "The subscriber is not in a state that allows this action.",
                false,
            ),
            NewOrgNotAllowed => (
                9030,
                409,
                "No organization exists for this enterprise and the template does not create new ones.",
                false,
            ),
            FormTokenInvalid => (
                9031,
                403,
                "The form is out of date or did not come from this site; reload the page and try again.",
                false,
            ),
            OperatorTokenRequired => (
                9032,
                401,
                "The operator API needs a valid operator token (Authorization: Bearer).",
                false,
            ),
            OperatorRequestForbidden => (
                9033,
                403,
                "The ops listener refuses browser requests: no Origin header, and a Host that is localhost or the listener's address.",
                false,
            ),
            MalformedRequest => (
                9034,
                400,
                "Malformed HTTP request: exactly one Host header is required.",
                false,
            ),
            VerificationBusy => (
                9035,
                503,
                "Too many credential checks waiting for this caller; retry later.",
                false,
            ),
            ServerBusy => (
                9036,
                503,
                "The server holds as much request data as it allows; retry later.",
                false,
            ),
            TemplateDisabled => (
                9037,
                409,
                "The subscriber's customer template was removed from the configuration; it accepts no provisioning.",
                false,
            ),
            XsiOtherUser => (
                9038,
                403,
                "These credentials are another user's: an XSI user acts on itself only.",
                false,
            ),
            XsiEventLimit => (
                9039,
                403,
                "An Xsi-Events limit is reached (channels per user or in all, subscriptions per channel set).",
                false,
            ),
            XsiTargetForbidden => (
                9040,
                403,
                "This event subscription target is not the caller's: enterprise, group and system targets need a partner admin token.",
                false,
            ),
            LicenseShortage => (
                9041,
                409,
                "Not enough licenses: the organization's subscriptions have none left of a license this subscriber needs.",
                true,
            ),
            SubscriptionBelowAssigned => (
                9042,
                409,
                "A subscription's quantity cannot go below the licenses already assigned from it.",
                false,
            ),
            CallingWithheld => (
                9043,
                409,
                "Provisioned without Webex Calling: it needs an E.164 number pre-provisioned in one of the organization's locations and assigned to no other user or service.",
                true,
            ),
            DeviceNotAllowed => (
                9044,
                409,
                "No activation code: a device needs a Webex Calling license, and Webex Go needs Webex Calling Professional in a US or UK location.",
                true,
            ),
            OperatorOnly => (
                9045,
                403,
                "Only the operator may do this: license subscriptions come from the commercial side (partner admins read them).",
                false,
            ),
        };
        ErrorCodeInfo {
            code,
            http_status,
            summary,
            async_possible,
        }
    }

    pub const fn code(self) -> u32 {
        self.info().code
    }

    pub const fn http_status(self) -> u16 {
        self.info().http_status
    }

    /// Whether an operation refused with this code was refused because of
    /// what the store held then (an organization awaiting approval, a user
    /// id elsewhere, a subscriber not found, …), not because of what the
    /// document said: a replay of its `requestId` decides that operation
    /// again instead of repeating the first answer.
    pub const fn decided_on_stored_state(self) -> bool {
        matches!(
            self,
            ErrorCode::ExistingOrgNeedsApproval
                | ErrorCode::EnterpriseLinkedElsewhere
                | ErrorCode::UserIdAlreadyAssociated
                | ErrorCode::NotFound
                | ErrorCode::TrunkUserWithRouteList
                | ErrorCode::NumberAlreadyAssigned
                | ErrorCode::NewOrgNotAllowed
                | ErrorCode::WholesaleRejected
                | ErrorCode::PartnerNotAdmin
                | ErrorCode::Internal
        )
    }

    pub fn from_code(code: u32) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| c.code() == code)
    }

    /// The table as Markdown, as docs/errors.md publishes it.
    pub fn markdown_table() -> String {
        let mut out =
            String::from("| code | HTTP | meaning | in subscriber errors[] |\n|---|---|---|---|\n");
        for c in Self::ALL {
            let i = c.info();
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                i.code,
                i.http_status,
                i.summary,
                if i.async_possible { "yes" } else { "no" }
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.code()), "duplicate code {}", c.code());
            assert_eq!(ErrorCode::from_code(c.code()), Some(*c));
        }
    }

    #[test]
    fn cisco_codes_keep_their_numbers() {
        assert_eq!(ErrorCode::MissingParameter.code(), 1001);
        assert_eq!(ErrorCode::InvalidParameterSize.code(), 1002);
        assert_eq!(ErrorCode::ExistingOrgNeedsApproval.code(), 2017);
        assert_eq!(ErrorCode::ExistingOrgNeedsApproval.http_status(), 409);
        assert_eq!(ErrorCode::BillingReportNotFound.code(), 2024);
        assert_eq!(ErrorCode::UnderMaintenance.code(), 2560);
        assert_eq!(ErrorCode::UserIdAlreadyAssociated.code(), 10022);
    }

    #[test]
    fn own_codes_live_above_9000() {
        let cisco = [1001, 1002, 2017, 2024, 2560, 10022];
        for c in ErrorCode::ALL {
            if !cisco.contains(&c.code()) {
                assert!(c.code() > 9000, "{:?} has {}", c, c.code());
            }
        }
    }
}
