//! The fuzz campaign at a small size, so the harness cannot rot: every target runs its seeds
//! and some mutations, and none may panic or over-allocate. The full campaign is the bench.

#[test]
fn every_target_runs_a_small_campaign_without_findings() {
    let findings_dir =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-findings-test");
    let reports = fuzz::campaign(2_500, 1, &[], &findings_dir, false, |r| {
        eprintln!("{}", fuzz::format_line(r))
    });
    assert_eq!(reports.len(), 9, "every target ran");
    for r in &reports {
        assert!(r.execs >= 20, "{}: {} executions", r.name, r.execs);
        // The seeds are real inputs: more than one outcome means the mutations reached past them.
        assert!(r.outcomes > 1, "{}: only {} outcome", r.name, r.outcomes);
        let findings: Vec<String> = r
            .findings
            .iter()
            .map(|f| {
                format!(
                    "{} {}: {} ({})",
                    f.target,
                    f.kind,
                    f.detail,
                    f.input.display()
                )
            })
            .collect();
        assert!(findings.is_empty(), "{findings:#?}");
    }
}
