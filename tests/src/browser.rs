//! `report.html` in a real browser: headless Chromium (Debian's `chromium`,
//! which scripts/deps.sh installs) opens the page from disk, runs its
//! script, and hands back the resulting DOM and a screenshot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What the browser made of a page.
pub struct RenderedPage {
    /// The attributes of `<body>` once the page's script has run.
    pub body: BTreeMap<String, String>,
    /// The share of the screenshot's pixels that differ from its background.
    pub inked: f64,
    /// Distinct colours in the screenshot.
    pub colours: usize,
    pub screenshot: PathBuf,
}

impl RenderedPage {
    /// A `<body>` attribute as a number.
    pub fn count(&self, name: &str) -> usize {
        let value = self.body.get(name).unwrap_or_else(|| panic!("<body> has no {name}: {:?}", self.body));
        value.parse().unwrap_or_else(|_| panic!("<body {name}=\"{value}\"> is not a count"))
    }
}

fn browser() -> Option<&'static str> {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()))
}

/// Opens `page` in headless Chromium; `None` (after saying why) where no
/// Chromium is installed, except in CI, where that is a failure.
pub fn render(page: &Path, work: &Path) -> Option<RenderedPage> {
    let Some(browser) = browser() else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI needs Chromium for the report page tests: scripts/deps.sh installs it");
        vigil_stage_testkit::skip("Chromium is not installed (scripts/deps.sh installs Debian's `chromium`)");
        return None;
    };
    let url = format!("file://{}", page.canonicalize().expect("the page exists").display());
    let profile = work.join("chromium-profile");
    let screenshot = work.join("report-screenshot.png");
    let run = |extra: &[String]| {
        let out = Command::new(browser)
            // The flags that keep Chromium off the network and away from a desktop session.
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(&url)
            .stdin(Stdio::null())
            .output()
            .expect("start chromium");
        assert!(out.status.success(), "chromium failed on {url}:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = run(&["--dump-dom".to_string()]);
    run(&[format!("--screenshot={}", screenshot.display()), "--window-size=1200,1600".to_string()]);
    let body = body_attributes(&dom).unwrap_or_else(|| panic!("no <body> in the DOM of {url}:\n{dom}"));
    let image = image::open(&screenshot).expect("read the screenshot").to_rgb8();
    let background = *image.get_pixel(0, 0);
    let differs = |p: &image::Rgb<u8>| p.0.iter().zip(background.0).any(|(a, b)| a.abs_diff(b) > 16);
    let inked = image.pixels().filter(|p| differs(p)).count() as f64 / (image.width() * image.height()) as f64;
    let colours = image.pixels().map(|p| p.0).collect::<std::collections::HashSet<_>>().len();
    Some(RenderedPage { body, inked, colours, screenshot })
}

/// `name="value"` pairs of the first `<body ...>` tag.
fn body_attributes(dom: &str) -> Option<BTreeMap<String, String>> {
    let start = dom.find("<body")? + "<body".len();
    let tag = &dom[start..start + dom[start..].find('>')?];
    let mut attributes = BTreeMap::new();
    let mut rest = tag;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim().to_string();
        let value_end = rest[eq + 2..].find('"')?;
        attributes.insert(name, rest[eq + 2..eq + 2 + value_end].replace("&quot;", "\"").replace("&amp;", "&"));
        rest = &rest[eq + 2 + value_end + 1..];
    }
    Some(attributes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn body_attributes_are_read() {
        let attributes = super::body_attributes("<html><head></head><body data-a=\"yes\" data-b=\"3\"><p>").unwrap();
        assert_eq!(attributes["data-a"], "yes");
        assert_eq!(attributes["data-b"], "3");
    }
}
