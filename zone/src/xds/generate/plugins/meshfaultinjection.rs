use super::Ctx;
use crate::xds::generate::model::ProxyConfig;

pub fn apply(cfg: &mut ProxyConfig, ctx: &Ctx<'_>) {
    let _ = (cfg, ctx);
}
