//! The signature verifiers receivers run, with arbitrary headers, body and token: Coze
//! (`verify`, `verify_fresh`) and Standard Webhooks. Nothing panics, a signature is accepted only
//! when it is the one `sign` makes, and what the signers make always verifies.

#![no_main]

use huidiao_signature::{
    sign, standard_webhooks_sign, standard_webhooks_verify, verify, verify_fresh, VerifyError,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    timestamp: &'a str,
    nonce: &'a str,
    verify_token: &'a str,
    body: &'a [u8],
    signature: &'a str,
    now_ms: i64,
    window_ms: i64,
    msg_id: &'a str,
    timestamp_s: i64,
    webhook_signature: &'a str,
}

fuzz_target!(|i: Input<'_>| {
    let expected = sign(i.timestamp, i.nonce, i.verify_token, i.body);
    let accepted = verify(i.timestamp, i.nonce, i.verify_token, i.body, i.signature);
    assert_eq!(accepted, i.signature.trim().eq_ignore_ascii_case(&expected));
    assert!(verify(i.timestamp, i.nonce, i.verify_token, i.body, &expected.to_uppercase()));

    let fresh =
        verify_fresh(i.timestamp, i.nonce, i.verify_token, i.body, i.signature, i.now_ms, i.window_ms);
    match fresh {
        Ok(()) => assert!(accepted),
        Err(VerifyError::BadSignature) => assert!(!accepted),
        Err(VerifyError::Stale { skew_ms }) => assert!(skew_ms.saturating_abs() > i.window_ms),
        Err(VerifyError::BadTimestamp) => assert!(i.timestamp.trim().parse::<i64>().is_err()),
    }

    let (token, id, at, body) = (i.verify_token, i.msg_id, i.timestamp_s, i.body);
    let _ = standard_webhooks_verify(token, id, at, body, i.webhook_signature);
    let made = standard_webhooks_sign(token, id, at, body);
    assert!(standard_webhooks_verify(token, id, at, body, &made));
    assert!(standard_webhooks_verify(token, id, at, body, &format!("{} {made}", i.webhook_signature)));
});
