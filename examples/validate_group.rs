//! Loads an ACI container group file (YAML, JSON resource or ARM template), validates it with
//! ACI's rules and prints a summary, or every violation with its field path.
//!
//! ```text
//! cargo run --example validate_group -- crates/aci-core/tests/fixtures/yaml/multi-container.yaml
//! ```

use std::process::ExitCode;

use aci::core::spec::ContainerGroup;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: validate_group FILE");
        return ExitCode::from(2);
    };
    let group = match ContainerGroup::from_path(&path) {
        Ok(group) => group,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(errors) = group.validate() {
        eprintln!("{path}: {errors}");
        return ExitCode::FAILURE;
    }
    println!("{path}: group {:?} is valid", group.name);
    for container in &group.properties.containers {
        let props = &container.properties;
        println!("  container {:<12} image {}", container.name, props.image);
    }
    ExitCode::SUCCESS
}
