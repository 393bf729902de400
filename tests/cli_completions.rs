//! `eks-reaper completions SHELL` and `eks-reaper man` through the real binary: the bash
//! script loads into a real bash and completes the subcommands; the man page names them.

mod common;

use common::cli::{self, BIN};

#[tokio::test]
async fn bash_completion_loads_and_completes_the_subcommands() {
    // Load the generated script into a real bash and ask its completion function what
    // follows `eks-reaper he`.
    let script = format!(
        "source <({BIN:?} completions bash) && complete -p eks-reaper && \
         COMP_WORDS=(eks-reaper he) COMP_CWORD=1 COMP_LINE='eks-reaper he' COMP_POINT=13 && \
         _eks__reaper eks-reaper he eks-reaper && printf '%s\\n' \"${{COMPREPLY[@]}}\""
    );
    let out = cli::command("bash", &[])
        .args(["--norc", "-c", &script])
        .output()
        .await
        .expect("bash");
    assert!(out.status.success(), "{}", cli::shown(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("-F _eks__reaper eks-reaper"), "{text}");
    assert!(text.lines().any(|l| l == "headroom"), "{text}");
}

#[tokio::test]
async fn every_shell_gets_a_script_and_an_unknown_one_is_a_usage_error() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = cli::command(BIN, &[])
            .args(["completions", shell])
            .output()
            .await
            .expect("run");
        assert!(out.status.success(), "{shell}: {}", cli::shown(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("plan"),
            "{shell}"
        );
    }
    let out = cli::command(BIN, &[])
        .args(["completions", "tcsh"])
        .output()
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", cli::shown(&out));
}

#[tokio::test]
async fn the_man_page_names_every_subcommand() {
    let out = cli::command(BIN, &[])
        .arg("man")
        .output()
        .await
        .expect("run");
    assert!(out.status.success(), "{}", cli::shown(&out));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH eks-reaper"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for sub in ["run", "plan", "headroom", "token", "completions"] {
        let entry = format!("eks\\-reaper\\-{sub}(1)");
        assert!(page.contains(&entry), "no {entry} in:\n{page}");
    }
}
