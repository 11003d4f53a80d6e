//! The image and the chart agree with the binary they ship: the Dockerfile builds the `commons`
//! binary of this package with a profile `Cargo.toml` defines, copies every workspace member the
//! locked build needs, runs `commons run` as the chart's non-root user on the chart's ports, puts
//! GOV.UK Frontend where `--portal-assets` looks by default; and every `COMMONS_*` variable the
//! chart's Deployment sets is one `commons run` reads. (The image itself cannot be built on the
//! machines the tests run on; docs/operations.md says how it is built.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `commons run --help`, with no `COMMONS_*` variable set (the help shows their values).
fn run_help() -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_commons"));
    command.args(["run", "--help"]);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("COMMONS_")) {
        command.env_remove(key);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The variables named `[env: NAME=...]` in a help text, or `name: NAME` in a manifest.
fn names_after(text: &str, marker: &str) -> BTreeSet<String> {
    text.split(marker)
        .skip(1)
        .map(|rest| rest.chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect::<String>())
        .filter(|name| name.starts_with("COMMONS_"))
        .collect()
}

/// The Dockerfile's instructions of `kind` in the final stage (after the last `FROM`).
fn final_stage(dockerfile: &str, kind: &str) -> Vec<String> {
    let last_from = dockerfile.rfind("\nFROM ").unwrap();
    dockerfile[last_from..]
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{kind} ")).map(str::to_owned))
        .collect()
}

/// A value of `charts/commons/values.yaml` two levels down (`section.key`), as written.
fn value(values: &str, section: &str, key: &str) -> String {
    let start = values.find(&format!("\n{section}:\n")).unwrap_or_else(|| panic!("no {section}"));
    values[start + 1..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with(' ') || l.is_empty())
        .find_map(|l| l.strip_prefix(&format!("  {key}: ")))
        .map(|v| v.split('#').next().unwrap_or_default().trim().to_owned())
        .unwrap_or_else(|| panic!("no {section}.{key}"))
}

#[test]
fn every_variable_the_chart_sets_is_one_commons_run_reads() {
    let read_by_binary = names_after(&run_help(), "[env: ");
    assert!(read_by_binary.contains("COMMONS_LEDGER"), "{read_by_binary:?}");
    let set_by_chart = names_after(&read("charts/commons/templates/deployment.yaml"), "name: ");
    assert!(set_by_chart.len() > 20, "{set_by_chart:?}");
    let unknown: Vec<_> = set_by_chart.difference(&read_by_binary).collect();
    assert!(unknown.is_empty(), "the chart sets variables `commons run` does not read: {unknown:?}");
}

#[test]
fn the_dockerfile_builds_and_runs_the_binary_as_the_chart_expects() {
    let dockerfile = read("Dockerfile");
    let cargo = read("Cargo.toml");

    // The build: this package's `commons` binary, a profile Cargo.toml defines, copied from that
    // profile's directory.
    let build = dockerfile.lines().find(|l| l.contains("cargo build")).unwrap();
    assert!(build.contains("-p commons-operator") && build.contains("--bin commons"), "{build}");
    let profile = build.split("--profile ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap();
    assert!(cargo.contains(&format!("\n[profile.{profile}]\n")), "profile {profile} is not in Cargo.toml");
    assert!(dockerfile.contains(&format!("/{profile}/commons /out/commons")), "copied from another profile");
    assert!(build.contains("--locked"), "{build}");

    // Every workspace member is copied in (the locked build needs each), and the allocator's settings.
    let members = cargo.lines().find(|l| l.starts_with("members = ")).unwrap();
    for member in members.split('"').skip(1).step_by(2) {
        assert!(dockerfile.contains(&format!("\nCOPY {member} {member}\n")), "member {member} not copied");
    }
    assert!(dockerfile.contains("\nCOPY .cargo .cargo\n"), "the allocator's settings (.cargo/config.toml)");

    // It runs `commons run`, a command the binary has.
    assert_eq!(final_stage(&dockerfile, "ENTRYPOINT"), ["[\"/commons\"]"]);
    assert_eq!(final_stage(&dockerfile, "CMD"), ["[\"run\"]"]);
    assert!(run_help().contains("Usage: commons run"));

    // As the chart's user, on the chart's ports.
    let deployment = read("charts/commons/templates/deployment.yaml");
    let user = final_stage(&dockerfile, "USER");
    assert_eq!(user, ["65532:65532"]);
    assert!(deployment.contains("runAsUser: 65532") && deployment.contains("runAsGroup: 65532"));
    let values = read("charts/commons/values.yaml");
    let ports: BTreeSet<String> = final_stage(&dockerfile, "EXPOSE")
        .iter()
        .flat_map(|l| l.split_whitespace().map(str::to_owned))
        .collect();
    let chart_ports: BTreeSet<String> =
        [value(&values, "api", "port"), value(&values, "webhook", "port")].into();
    assert_eq!(ports, chart_ports);

    // GOV.UK Frontend where the portal looks by default.
    let help = run_help();
    let default_assets = help
        .split("--portal-assets")
        .nth(1)
        .and_then(|r| r.split("[default: ").nth(1))
        .and_then(|r| r.split(']').next())
        .unwrap();
    assert!(
        final_stage(&dockerfile, "COPY").iter().any(|c| c.ends_with(&format!(" {default_assets}"))),
        "GOV.UK Frontend is not copied to {default_assets}"
    );
}
