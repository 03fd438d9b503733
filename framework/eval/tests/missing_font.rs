//! Without a readable font, plots fail with an error that says what to
//! install. Fonts load once per process, so this runs as its own test binary.

#[test]
fn a_missing_font_is_an_error_naming_the_package() {
    std::env::set_var("VIGIL_FONT", "/nonexistent/vigil-test-font.ttf");
    let dir = std::env::temp_dir().join(format!("vigil-eval-nofont-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("timeline.png");
    let err = vigil_eval::plot_timeline(&path, "Video 01", &[0.1, 0.2], None).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/vigil-test-font.ttf") && err.contains("fonts-dejavu-core"), "{err}");
    assert!(!path.exists(), "no file is written when drawing fails");
    std::fs::remove_dir_all(dir).unwrap();
}
