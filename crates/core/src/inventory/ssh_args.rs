//! `ansible_ssh_common_args` and `ansible_ssh_extra_args`: the `ssh` command-line options
//! Ansible passes through, read into what pgdeploy's SSH transport does itself.
//!
//! pgdeploy runs no `ssh` binary, so each option is mapped or refused: `-o ProxyJump=`/`-J`,
//! `-o Port=`/`-p`, `-o User=`/`-l`, `-o IdentityFile=`/`-i`, `-o UserKnownHostsFile=`,
//! `-o ConnectTimeout=`, `-o ServerAliveInterval=`, `-o StrictHostKeyChecking=yes|accept-new`
//! are honoured; `-o ControlMaster`/`ControlPersist`/`ControlPath` (Ansible's connection
//! reuse, which pgdeploy does anyway: one connection per host per run), `-q`, `-T` change
//! nothing and are accepted; anything else is an error naming the option.

/// What the options asked for; `None`/empty where they said nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshOptions {
    pub proxy_jump: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub identity_files: Vec<String>,
    pub known_hosts_file: Option<String>,
    pub connect_timeout: Option<u64>,
    pub server_alive_interval: Option<u64>,
    pub accept_new_host_keys: bool,
}

/// Options that change nothing for pgdeploy, accepted as they are.
const NO_EFFECT: &[&str] = &["controlmaster", "controlpersist", "controlpath"];

/// Reads one variable's value into `out` (earlier values win, as in `ssh`); the error names
/// the first option that is not supported.
pub fn parse_into(text: &str, out: &mut SshOptions) -> Result<(), String> {
    let words = super::extra_vars::split_words(text).map_err(str::to_string)?;
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let (flag, glued) = match word.strip_prefix('-') {
            Some(rest) if !rest.is_empty() => {
                let flag = rest.chars().next().unwrap_or_default();
                let glued = &rest[flag.len_utf8()..];
                (flag, (!glued.is_empty()).then(|| glued.to_string()))
            }
            _ => return Err(format!("`{word}` is not an ssh option")),
        };
        let mut value = |name: char| {
            glued
                .clone()
                .or_else(|| words.next())
                .ok_or_else(|| format!("`-{name}` needs a value"))
        };
        match flag {
            'o' => {
                let option = value('o')?;
                let (key, val) = option
                    .split_once('=')
                    .or_else(|| option.split_once(' '))
                    .map(|(k, v)| (k.trim(), v.trim()))
                    .ok_or_else(|| format!("`-o {option}` is not `-o Key=Value`"))?;
                set_option(key, val, out)?;
            }
            'J' => set_option("ProxyJump", &value('J')?, out)?,
            'p' => set_option("Port", &value('p')?, out)?,
            'l' => set_option("User", &value('l')?, out)?,
            'i' => set_option("IdentityFile", &value('i')?, out)?,
            'q' | 'T' if glued.is_none() => {}
            _ => {
                return Err(format!(
                    "the ssh option `{word}` is not supported (pgdeploy speaks SSH itself: it maps \
                     `-o ProxyJump`/`-J`, `Port`/`-p`, `User`/`-l`, `IdentityFile`/`-i`, \
                     `UserKnownHostsFile`, `ConnectTimeout`, `ServerAliveInterval`, \
                     `StrictHostKeyChecking`)"
                ))
            }
        }
    }
    Ok(())
}

fn set_option(key: &str, value: &str, out: &mut SshOptions) -> Result<(), String> {
    let number = |what: &str| {
        value
            .parse::<u64>()
            .map_err(|_| format!("`{what}` must be a number of seconds, found `{value}`"))
    };
    match key.to_ascii_lowercase().as_str() {
        "proxyjump" => {
            out.proxy_jump.get_or_insert_with(|| value.to_string());
        }
        "port" => {
            let port = value
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`Port` must be from 1 to 65535, found `{value}`"))?;
            out.port.get_or_insert(port);
        }
        "user" => {
            out.user.get_or_insert_with(|| value.to_string());
        }
        "identityfile" => out.identity_files.push(value.to_string()),
        "userknownhostsfile" => {
            let first = value.split_whitespace().next().unwrap_or(value);
            out.known_hosts_file.get_or_insert_with(|| first.to_string());
        }
        "connecttimeout" => {
            let t = number("ConnectTimeout")?;
            out.connect_timeout.get_or_insert(t);
        }
        "serveraliveinterval" => {
            let t = number("ServerAliveInterval")?;
            out.server_alive_interval.get_or_insert(t);
        }
        "stricthostkeychecking" => match value.to_ascii_lowercase().as_str() {
            "yes" | "true" => {}
            "accept-new" => out.accept_new_host_keys = true,
            other => {
                return Err(format!(
                    "`StrictHostKeyChecking={other}` is not supported: host keys are always \
                     checked (`accept-new`, or `--accept-new-host-keys`, records new ones)"
                ))
            }
        },
        "proxycommand" => {
            return Err(
                "`ProxyCommand` is not supported: use `ProxyJump` (`-J`), here or in an ssh config file"
                    .to_string(),
            )
        }
        k if NO_EFFECT.contains(&k) => {}
        _ => {
            return Err(format!(
                "the ssh option `-o {key}` is not supported (pgdeploy speaks SSH itself: it maps \
                 `ProxyJump`, `Port`, `User`, `IdentityFile`, `UserKnownHostsFile`, \
                 `ConnectTimeout`, `ServerAliveInterval`, `StrictHostKeyChecking`)"
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SshOptions, String> {
        let mut out = SshOptions::default();
        parse_into(text, &mut out).map(|()| out)
    }

    #[test]
    fn supported_options_map() {
        let o = parse(
            "-o ProxyJump=admin@bastion:2222 -oPort=2200 -o 'User deploy' -i ~/.ssh/a -i/k/b \
             -o UserKnownHostsFile=/kh -o ConnectTimeout=7 -o ServerAliveInterval=15 \
             -o StrictHostKeyChecking=accept-new -o ControlMaster=auto -o ControlPersist=60s -q -p 9",
        )
        .unwrap();
        assert_eq!(
            o,
            SshOptions {
                proxy_jump: Some("admin@bastion:2222".into()),
                port: Some(2200),
                user: Some("deploy".into()),
                identity_files: vec!["~/.ssh/a".into(), "/k/b".into()],
                known_hosts_file: Some("/kh".into()),
                connect_timeout: Some(7),
                server_alive_interval: Some(15),
                accept_new_host_keys: true,
            }
        );
        assert_eq!(
            parse("-J b1,b2").unwrap().proxy_jump.as_deref(),
            Some("b1,b2")
        );
    }

    #[test]
    fn anything_else_is_named() {
        for (text, error) in [
            (
                "-o ProxyCommand='ssh -W %h:%p bastion'",
                "`ProxyCommand` is not supported",
            ),
            (
                "-o StrictHostKeyChecking=no",
                "`StrictHostKeyChecking=no` is not supported",
            ),
            ("-A", "the ssh option `-A` is not supported"),
            (
                "-o Compression=yes",
                "the ssh option `-o Compression` is not supported",
            ),
            ("-o Port=x", "`Port` must be from 1 to 65535, found `x`"),
            ("bastion", "`bastion` is not an ssh option"),
            ("-J", "`-J` needs a value"),
        ] {
            let got = parse(text).unwrap_err();
            assert!(got.starts_with(error), "{text}: {got}");
        }
    }
}
