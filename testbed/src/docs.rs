//! Docs that run: the `sh` blocks of a Markdown page, as one bash script.

/// Every ```` ```sh ```` block of `markdown`, in order, under `set -euo pipefail`.
/// (Blocks fenced as `bash` or `console` are for reading only.)
pub fn sh_blocks(markdown: &str) -> String {
    let mut script = String::from("set -euo pipefail\n");
    let mut in_block = false;
    for line in markdown.lines() {
        if !in_block && line.trim_start() == "```sh" {
            in_block = true;
        } else if in_block && line.trim_start() == "```" {
            in_block = false;
            script.push('\n');
        } else if in_block {
            script.push_str(line);
            script.push('\n');
        }
    }
    script
}
