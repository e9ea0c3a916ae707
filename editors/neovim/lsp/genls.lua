-- Default configuration for vim.lsp.config / vim.lsp.enable (Neovim 0.11+):
--
--   vim.lsp.config('genls', { init_options = { endpoint = { url = 'http://127.0.0.1:8080' } } })
--   vim.lsp.enable('genls')
--
-- No `filetypes`: generation is useful in any buffer, so genls attaches to
-- every filetype. Buffer commands (:GenlsGenerate, :GenlsCancel) are created
-- by plugin/genls.lua on LspAttach, so a user-supplied on_attach does not
-- lose them.
return {
  cmd = { 'genls' },
  root_markers = { '.git' },
  -- Settings (endpoint, parameters, prompt, log) go in init_options; put the
  -- same table in settings = { genls = ... } to let the server re-read them
  -- through workspace/configuration. require('genls').setup() does both.
  init_options = {},
  -- genls edits the document while the user types; it must see every change
  -- at once to address its edits to the right version.
  flags = { debounce_text_changes = 0 },
  -- Answers applied = false for a stale edit (the default handler drops it
  -- and answers applied = true) and does not print every edit's label.
  handlers = {
    ['workspace/applyEdit'] = function(...)
      return require('genls').apply_edit(...)
    end,
  },
}
