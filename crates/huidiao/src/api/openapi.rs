//! The OpenAPI document, assembled from the handlers' own annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, coze, deliveries, service};

#[derive(OpenApi)]
#[openapi(
    info(title = "huidiao", description = "Coze-compatible callback (webhook) server. Every answer is the envelope \
        {code, msg, data?, detail: {logid}}; the schemas below describe `data`."),
    paths(
        coze::apps::create, coze::apps::update, coze::apps::list, coze::apps::delete,
        coze::events::subscribe, coze::events::list, coze::events::unsubscribe,
        admin::tenants::create_account, admin::tenants::create_user, admin::tenants::create_token,
        admin::tenants::revoke_token, admin::tenants::create_connector,
        admin::events::publish, admin::events::publish_batch,
        admin::limits::get_limits, admin::limits::set_limits,
        deliveries::list, deliveries::get_one, deliveries::resend,
        service::healthz, service::readyz, service::metrics, service::openapi,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
