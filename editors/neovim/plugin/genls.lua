-- Creates :GenlsGenerate, :GenlsCancel, :GenlsAccept, :GenlsDiscard and
-- :GenlsRegenerate in every buffer genls attaches to, however it was
-- started (vim.lsp.enable, nvim-lspconfig, vim.lsp.start).
-- Neovim 0.7 has no LspAttach event: there, use require('genls').setup(),
-- or pass require('genls').on_attach as on_attach.
if vim.g.loaded_genls then
  return
end
vim.g.loaded_genls = true
require('genls').init()
