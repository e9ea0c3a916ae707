//! Registers the genls language server with Zed. Zed starts language servers
//! only through extensions; this one runs `genls` from PATH and hands it the
//! user's `lsp.genls` settings.
use zed_extension_api::{self as zed, serde_json, settings::LspSettings};

struct Genls;

impl Genls {
    fn settings(worktree: &zed::Worktree) -> Option<LspSettings> {
        LspSettings::for_worktree("genls", worktree).ok()
    }
}

impl zed::Extension for Genls {
    fn new() -> Self {
        Genls
    }

    fn language_server_command(
        &mut self,
        _id: &zed::LanguageServerId,
        worktree: &zed::Worktree,
    ) -> zed::Result<zed::Command> {
        let path = worktree
            .which("genls")
            .ok_or_else(|| "genls not found on PATH (go install github.com/genls/genls@latest)".to_string())?;
        Ok(zed::Command {
            command: path,
            args: vec!["--stdio".to_string()],
            env: worktree.shell_env(),
        })
    }

    // initializationOptions: `lsp.genls.initialization_options`, else the
    // same object as `lsp.genls.settings`, so one block configures both.
    fn language_server_initialization_options(
        &mut self,
        _id: &zed::LanguageServerId,
        worktree: &zed::Worktree,
    ) -> zed::Result<Option<serde_json::Value>> {
        Ok(Self::settings(worktree).and_then(|s| s.initialization_options.or(s.settings)))
    }

    // workspace/configuration looks the "genls" section up in this value.
    fn language_server_workspace_configuration(
        &mut self,
        _id: &zed::LanguageServerId,
        worktree: &zed::Worktree,
    ) -> zed::Result<Option<serde_json::Value>> {
        let settings = Self::settings(worktree)
            .and_then(|s| s.settings)
            .unwrap_or_default();
        Ok(Some(serde_json::json!({ "genls": settings })))
    }
}

zed::register_extension!(Genls);
