//! `pip install` into a module's venv, from the sources a playbook names (an index, a
//! find-links directory, or PyPI): shared by the modules that install Python software
//! (`patroni`, `pglift_site`).

use super::shell::quote;

/// `VENV/bin/pip install …` with the options for `index_url` and `find_links`, packages not
/// included. `find_links` alone means no index at all (an air-gapped mirror).
pub(crate) fn install_command(
    venv: &str,
    index_url: Option<&str>,
    find_links: Option<&str>,
) -> String {
    let mut pip = format!(
        "{} install --disable-pip-version-check --no-cache-dir",
        quote(&format!("{venv}/bin/pip"))
    );
    if let Some(i) = index_url {
        pip.push_str(&format!(" --index-url {}", quote(i)));
    }
    if let Some(f) = find_links {
        if index_url.is_none() {
            pip.push_str(" --no-index");
        }
        pip.push_str(&format!(" --find-links {}", quote(f)));
    }
    // pip ignores a plain-http source ("not a trusted or secure host") unless told: the
    // playbook named it, as air-gapped mirrors often are
    for host in http_hosts(&[index_url, find_links]) {
        pip.push_str(&format!(" --trusted-host {}", quote(&host)));
    }
    pip
}

/// The hosts (with their port, as pip matches them) of the `http://` sources.
fn http_hosts(urls: &[Option<&str>]) -> Vec<String> {
    let mut hosts: Vec<String> = urls
        .iter()
        .flatten()
        .filter_map(|u| u.strip_prefix("http://"))
        .filter_map(|rest| rest.split(['/', '?', '#']).next())
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect();
    hosts.dedup();
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_sources_are_trusted_and_find_links_alone_means_no_index() {
        assert_eq!(
            install_command("/v", None, Some("http://10.0.0.1:8480/python/")),
            "/v/bin/pip install --disable-pip-version-check --no-cache-dir --no-index \
             --find-links http://10.0.0.1:8480/python/ --trusted-host 10.0.0.1:8480"
        );
        assert_eq!(
            install_command("/v", Some("https://pypi.example/simple"), None),
            "/v/bin/pip install --disable-pip-version-check --no-cache-dir \
             --index-url https://pypi.example/simple"
        );
    }
}
