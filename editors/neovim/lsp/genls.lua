-- Default configuration for vim.lsp.config / vim.lsp.enable (Neovim 0.11+):
--
--   vim.lsp.config('genls', { init_options = { endpoint = { url = 'http://127.0.0.1:8080' } } })
--   vim.lsp.enable('genls')
--
-- No `filetypes`: generation is useful in any buffer, so genls attaches to
-- every buffer, with a filetype or not (vim.lsp.enable starts servers on
-- FileType only; the plugin attaches the other buffers). Buffer commands
-- (:GenlsGenerate, :GenlsAccept, …) are created by plugin/genls.lua on
-- LspAttach, so a user-supplied on_attach does not lose them.
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
  -- applyEdit: answers applied = false for a stale edit (the default handler
  -- drops it and answers applied = true), does not print every edit's label,
  -- and makes each generation one undo block. showMessage: remembers what the
  -- server said of the settings, for :checkhealth genls.
  handlers = {
    ['workspace/applyEdit'] = function(...)
      return require('genls').apply_edit(...)
    end,
    ['window/showMessage'] = function(...)
      return require('genls').show_message(...)
    end,
  },
  -- Run by the client before the server: a new generation starts a new undo
  -- block, and so does the edit that discards one.
  commands = {
    ['genls.generate'] = function(...)
      return require('genls').generate_command(...)
    end,
    ['genls.accept'] = function(command, ctx)
      return require('genls').review_command(command, ctx)
    end,
    ['genls.discard'] = function(command, ctx)
      return require('genls').review_command(command, ctx)
    end,
    ['genls.regenerate'] = function(command, ctx)
      return require('genls').review_command(command, ctx)
    end,
  },
}
