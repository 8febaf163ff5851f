//! One command on one channel: exec, feed stdin, collect output and exit status.

use std::time::Duration;

use russh::client::{Handle, Msg};
use russh::{Channel, ChannelMsg, Sig};
use tokio::time::Instant;

use super::connect::Client;
use pgdeploy_core::transport::ExecOutput;

/// Why a command did not complete. The caller turns this into a `TransportError` with the
/// host and command it knows.
#[derive(Debug)]
pub(super) enum ExecError {
    Timeout,
    Failed(String),
}

/// Runs `line` (a complete command line for the remote login shell) on a new channel of
/// `session`, with `stdin` written then closed, within `limit`.
///
/// Stdin is written from its own task while output is read, so a command that produces much
/// output before reading its input cannot deadlock against SSH flow control.
pub(super) async fn run(
    session: &Handle<Client>,
    host: &str,
    line: &str,
    stdin: Option<&[u8]>,
    limit: Duration,
) -> Result<ExecOutput, ExecError> {
    let deadline = Instant::now() + limit;
    let open = async {
        let channel = open_channel(session).await?;
        channel
            .exec(true, line)
            .await
            .map_err(|e| ExecError::Failed(format!("cannot start the command: {e}")))?;
        Ok(channel)
    };
    let channel = tokio::time::timeout_at(deadline, open)
        .await
        .map_err(|_| ExecError::Timeout)??;
    let (mut reader, writer) = channel.split();
    let writer = std::sync::Arc::new(writer);
    let feeder = {
        let writer = writer.clone();
        let data = stdin.map(<[u8]>::to_vec);
        tokio::spawn(async move {
            // Errors here mean the command finished or closed its input early: not a failure
            // of the command, which the exit status reports.
            if let Some(data) = data {
                let _ = writer.data(&data[..]).await;
            }
            let _ = writer.eof().await;
        })
    };
    let collect = async {
        let mut out = ExecOutput {
            status: -1,
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        let mut got_status = false;
        while let Some(msg) = reader.wait().await {
            match msg {
                ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, ext: 1 } => out.stderr.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => {
                    out.status = i32::try_from(exit_status).unwrap_or(i32::MAX);
                    got_status = true;
                }
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    out.status = 128 + signal_number(&signal_name);
                    got_status = true;
                }
                ChannelMsg::Failure => {
                    return Err(ExecError::Failed(
                        "the server refused to run the command".into(),
                    ))
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        if !got_status {
            return Err(ExecError::Failed(
                "the channel closed without an exit status".into(),
            ));
        }
        Ok(out)
    };
    let result = tokio::time::timeout_at(deadline, collect).await;
    feeder.abort();
    match result {
        Ok(outcome) => outcome,
        Err(_) => {
            tracing::debug!(%host, "command timed out, killing it");
            // Best effort: OpenSSH delivers the signal to the command; closing the channel
            // then hangs up its pipes either way.
            let _ = writer.signal(Sig::KILL).await;
            let _ = writer.close().await;
            Err(ExecError::Timeout)
        }
    }
}

/// Opens a session channel, retrying briefly when the server refuses it.
///
/// sshd frees a finished session slightly after it has sent us the channel close, so right
/// after a burst of short commands a new channel may be refused as over `MaxSessions`
/// ("connect failed") although we never have more open than allowed. The refusal is transient:
/// retry with a growing pause, about 3 s in all, before reporting it.
async fn open_channel(session: &Handle<Client>) -> Result<Channel<Msg>, ExecError> {
    let mut pause = Duration::from_millis(2);
    let mut attempts = 0;
    loop {
        match session.channel_open_session().await {
            Ok(channel) => return Ok(channel),
            Err(russh::Error::ChannelOpenFailure(reason)) if attempts < 20 => {
                tracing::debug!(?reason, attempts, "channel refused, retrying");
                attempts += 1;
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(250));
            }
            Err(e) => {
                return Err(ExecError::Failed(format!(
                    "cannot open an SSH channel: {e}"
                )))
            }
        }
    }
}

/// The Linux number of a signal as SSH names it, so statuses read like a shell's `128 + n`.
fn signal_number(sig: &Sig) -> i32 {
    match sig {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(_) => 0,
    }
}
