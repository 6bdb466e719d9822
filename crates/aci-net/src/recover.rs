//! Crash recovery for [`NetworkManager`]: remove what aci owns but no longer knows, rebuild what
//! it knows but lost, release the leases of groups that are gone.

use crate::manager::{ManagerError, NetworkManager, RecoveryReport};
use crate::netns;
use crate::network;

impl NetworkManager {
    /// Crash recovery. Steps: delete namespaces with aci's prefix that have no spec in the state
    /// dir (and their uplink) → rebuild stored networks whose namespace is gone → release leases
    /// of groups not in `live_groups` (deleting their taps) → rewrite aci's host table. Touches
    /// nothing without the prefix.
    pub async fn recover(&self, live_groups: &[&str]) -> Result<RecoveryReport, ManagerError> {
        let mut report = RecoveryReport::default();
        for ns in netns::list(&self.cfg.name_prefix).map_err(ManagerError::Scan)? {
            let name = ns.trim_start_matches(self.cfg.name_prefix.as_str());
            if self.network_config(name)?.is_none() {
                // An orphan's uplink, if it had one, is named after prefix and network.
                let guess = network::uplink_plan(&self.cfg.name_prefix, name, 0).host_if;
                network::teardown(&ns, name, Some(&guess))
                    .await
                    .map_err(|e| ManagerError::Network(Box::new(e)))?;
                report.removed_namespaces.push(ns);
            }
        }
        for stored in self.state.all().map_err(ManagerError::State)? {
            let name = stored.config.name.clone();
            if !netns::exists(&self.namespace_of(&name)) {
                if let Some(up) = self.uplink_of(&stored) {
                    let _ = crate::links::delete_host_link(&up.host_if).await;
                }
                self.create_network(&stored.config).await?;
                report.rebuilt_networks.push(name.clone());
            }
            let stale: Vec<String> = self.leased_groups(&name)?;
            for group in stale.into_iter().filter(|g| !live_groups.contains(&g.as_str())) {
                self.detach(&name, &group).await?;
                report.released_leases.push((name.clone(), group));
            }
        }
        self.sync_host_table().await?;
        Ok(report)
    }
}
