//! Pulls an image and builds its rootfs disk, with an indicatif progress bar per blob.
//!
//! ```text
//! cargo run -p aci-core --example pull_progress -- REFERENCE [--insecure HOST] [--state DIR]
//! ```
//! Credentials for the image's registry come from `ACI_REGISTRY_USERNAME` and
//! `ACI_REGISTRY_PASSWORD` when set.

use std::collections::HashMap;

use aci_core::images::{
    ImageRef, ImageStore, ImageStoreConfig, ProgressKind, PullPolicy, RegistryCredential,
};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut reference = None;
    let mut insecure = Vec::new();
    let mut state = std::env::temp_dir().join("aci-example-images");
    while let Some(a) = args.next() {
        match a.as_str() {
            "--insecure" => insecure.extend(args.next()),
            "--state" => state = args.next().ok_or("--state needs a directory")?.into(),
            _ => reference = Some(a),
        }
    }
    let reference = reference.ok_or("usage: pull_progress REFERENCE [--insecure HOST] [--state DIR]")?;
    let registry = ImageRef::parse(&reference)?.registry().to_string();
    let credentials: Vec<RegistryCredential> =
        match (std::env::var("ACI_REGISTRY_USERNAME"), std::env::var("ACI_REGISTRY_PASSWORD")) {
            (Ok(username), Ok(password)) => {
                vec![RegistryCredential { server: registry, username, password }]
            }
            _ => Vec::new(),
        };

    let mut config = ImageStoreConfig::new(state);
    config.insecure_registries = insecure;
    let store = ImageStore::open(config)?;
    let mut events = store.subscribe();
    let bars = tokio::spawn(async move {
        let multi = MultiProgress::new();
        let style = ProgressStyle::with_template("{msg:14} {bar:40} {bytes:>10}/{total_bytes:10}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        let mut by_digest: HashMap<String, ProgressBar> = HashMap::new();
        while let Ok(e) = events.recv().await {
            let bar = by_digest.entry(e.digest.clone()).or_insert_with(|| {
                let bar = multi.add(ProgressBar::new(e.total).with_style(style.clone()));
                bar.set_message(e.digest.chars().skip(7).take(12).collect::<String>());
                bar
            });
            bar.set_position(e.done);
            match e.kind {
                ProgressKind::Done => bar.finish(),
                ProgressKind::Cached => bar.finish_with_message("cached"),
                ProgressKind::Started | ProgressKind::Downloading => {}
            }
        }
    });
    let disk = store.prepare(&reference, &credentials, PullPolicy::IfNotPresent).await?;
    drop(store);
    let _ = bars.await;
    println!("disk:        {}", disk.path.display());
    println!("entrypoint:  {:?}  cmd: {:?}", disk.config.entrypoint, disk.config.cmd);
    println!("env:         {:?}", disk.config.env);
    for w in &disk.warnings {
        println!("warning:     {w}");
    }
    Ok(())
}
