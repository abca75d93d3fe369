//! Page tokens: arbitrary `page_size` and `page_token` strings against a list, and the round
//! trip of every id. Nothing panics, a refusal is a 4000, and a token is accepted only in the
//! exact form the server made it.

#![no_main]

use huidiao::domain::paging::PageTokens;
use huidiao::error::ErrorCode;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    key: &'a [u8],
    list: &'a str,
    page_size: Option<&'a str>,
    page_token: Option<&'a str>,
    last_id: i64,
}

fuzz_target!(|input: Input<'_>| {
    let tokens = PageTokens::new(input.key.to_vec());
    match tokens.request(input.list, input.page_size, input.page_token) {
        Ok(request) => {
            assert!((1..=50).contains(&request.size));
            if let (Some(before), Some(token)) = (request.before, input.page_token) {
                assert_eq!(tokens.encode(input.list, before), token.trim(), "a token in another form");
            }
        }
        Err(err) => assert_eq!(err.code, ErrorCode::BadRequest),
    }
    let token = tokens.encode(input.list, input.last_id);
    let request = tokens.request(input.list, None, Some(&token)).expect("the server's own token");
    assert_eq!(request.before, Some(input.last_id));
});
