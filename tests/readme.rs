//! The README cannot rot: every `tapedeck ...` command in its shell blocks
//! must parse with the current flags. (The flows themselves run for real in
//! the other modules: capture, replay, analyze, the demo.)

use crate::common::tapedeck;

/// Splits a shell line into words, honouring single and double quotes.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Every `tapedeck` command line in the README's ```sh blocks, with
/// continuation lines joined and comments dropped.
fn readme_commands() -> Vec<String> {
    let readme = include_str!("../README.md");
    let mut cmds = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in readme.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = t == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let code = t.split(" #").next().unwrap_or("").trim_end();
        if let Some(stripped) = code.strip_suffix('\\') {
            pending.push_str(stripped);
            pending.push(' ');
            continue;
        }
        pending.push_str(code);
        let full = std::mem::take(&mut pending);
        // Commands may follow `VAR=... ` or sit after `&&` / `|`.
        for part in full.split("&&").flat_map(|p| p.split('|')) {
            let p = part.trim();
            if let Some(i) = p.find("tapedeck ") {
                if i == 0 || p[..i].ends_with(' ') && !p[..i].contains('/') {
                    cmds.push(p[i..].to_string());
                }
            }
        }
    }
    cmds
}

#[test]
fn every_readme_command_parses() {
    let cmds = readme_commands();
    assert!(
        cmds.len() >= 20,
        "README lists only {} commands",
        cmds.len()
    );
    let mut bad = Vec::new();
    for cmd in &cmds {
        let words = shell_words(cmd);
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let out = tapedeck()
            .args(&args)
            .env("TAPEDECK_PARSE_ONLY", "1")
            .output()
            .unwrap();
        if !out.status.success() {
            bad.push(format!(
                "{cmd}\n    {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "README commands that no longer parse:\n{}",
        bad.join("\n")
    );
}
