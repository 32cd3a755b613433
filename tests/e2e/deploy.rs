//! `deploy/kubernetes/` without a cluster: every manifest against the
//! Kubernetes schemas bundled in the pinned `kubernetes-validate` (strict),
//! and every Weir config in a ConfigMap through this build's `weir validate`.

use std::process::Command;

use crate::util::{plugin_dir, python_clients, repo};

#[test]
fn the_kubernetes_manifests_match_the_schemas_and_their_weir_configs_validate() {
    let out = Command::new(python_clients())
        .arg(repo().join("deploy/kubernetes/check.py"))
        .arg(env!("CARGO_BIN_EXE_weir"))
        .env("WEIR_PLUGIN_DIR", plugin_dir())
        .output()
        .expect("python runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("Deployment weir-aggregator") && report.contains("PodDisruptionBudget"), "{report}");
    assert!(report.matches(": weir validate").count() >= 2, "both Weir configs were validated: {report}");
}
