//! Certificate expiry: the `bwgate_tls_certificate_expiry_days` gauge and the
//! "expires soon" warning (DESIGN: warned about 30 days ahead).

use std::time::{SystemTime, UNIX_EPOCH};

use x509_parser::prelude::{FromDer, X509Certificate};

use super::TlsError;

pub const EXPIRY_GAUGE: &str = "bwgate_tls_certificate_expiry_days";

/// Days from now until `notAfter` of a DER certificate; negative once expired.
pub fn days_until_expiry(cert_der: &[u8]) -> Result<f64, TlsError> {
    let (_, cert) =
        X509Certificate::from_der(cert_der).map_err(|e| TlsError::X509(e.to_string()))?;
    Ok(days_from_now(cert.validity().not_after.timestamp()))
}

fn days_from_now(not_after_unix: i64) -> f64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    (not_after_unix as f64 - now) / 86_400.0
}

/// What the gauge needs about one certificate, kept so the value can be
/// refreshed as time passes without re-reading files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertExpiry {
    /// `server` or `client_ca`.
    pub kind: &'static str,
    pub subject: String,
    pub not_after: i64,
}

impl CertExpiry {
    pub(crate) fn parse(kind: &'static str, der: &[u8]) -> Result<Self, String> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        Ok(CertExpiry {
            kind,
            subject: subject_label(&cert),
            not_after: cert.validity().not_after.timestamp(),
        })
    }

    pub(crate) fn days_left(&self) -> f64 {
        days_from_now(self.not_after)
    }
}

/// The CN when there is one (short, readable in dashboards), else the whole
/// subject DN.
pub(crate) fn subject_label(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| cert.subject().to_string())
}

/// Sets the gauge for each certificate; with `warn`, also logs the ones
/// inside the warning window.
pub(crate) fn publish(certs: &[CertExpiry], warn_days: u32, warn: bool) {
    for c in certs {
        let days = c.days_left();
        metrics::gauge!(EXPIRY_GAUGE, "cert" => c.kind, "subject" => c.subject.clone()).set(days);
        if warn && days < f64::from(warn_days) {
            if days < 0.0 {
                tracing::warn!(cert = c.kind, subject = %c.subject, days = days.floor(), "TLS certificate has expired");
            } else {
                tracing::warn!(cert = c.kind, subject = %c.subject, days = days.floor(), "TLS certificate expires soon");
            }
        }
    }
}
