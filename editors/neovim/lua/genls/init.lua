-- genls for Neovim: starts the genls language server and gives every buffer
-- it attaches to these commands:
--
--   :[range]GenlsGenerate[!] [instruction]
--                            with a range, generate from the selected text and
--                            insert the result right after it; without one,
--                            continue the document at the cursor ("Generate
--                            here"); ! asks for an instruction (vim.ui.input)
--   :[range]GenlsRewrite [instruction]
--                            rewrite the range (default: the cursor's line) as
--                            instructed, asking for the instruction when none
--                            is given; the new text streams in after the
--                            original, which goes when the rewrite is accepted
--   :GenlsCancel[!]          stop generating in this buffer (! = everywhere)
--   :[range]GenlsAccept[!]   keep the pending generation at the cursor (or
--                            those touching the range; ! = all in the buffer)
--   :[range]GenlsDiscard[!]  remove it, as if it had never run
--   :[range]GenlsRegenerate[!]  remove it and run the same request again
--
-- Works with Neovim 0.11+ (vim.lsp.config / vim.lsp.enable and lsp/genls.lua),
-- 0.8-0.10 (vim.lsp.start), 0.7 (vim.lsp.start_client) and nvim-lspconfig.
-- The server does the work; this module only picks ranges and asks for the
-- matching code action, so its behaviour follows the server's.
local M = {}

M.name = 'genls'

-- Code action kinds the server offers.
M.kinds = {
  generate = 'refactor.rewrite.genls.generate',
  continue = 'refactor.rewrite.genls.continue',
  cancel = 'refactor.rewrite.genls.cancel',
  rewrite = 'refactor.rewrite.genls.rewrite',
  action = 'refactor.rewrite.genls.action', -- named actions, told apart by title
  accept = 'quickfix.genls.accept',
  discard = 'quickfix.genls.discard',
  regenerate = 'quickfix.genls.regenerate',
}

local function has(version)
  return vim.fn.has('nvim-' .. version) == 1
end

-- Whether this Neovim has the autocommand event (LspAttach from 0.8,
-- LspProgress from 0.10).
local function has_event(event)
  return vim.fn.exists('##' .. event) == 1
end

local function notify(msg, level)
  vim.notify('genls: ' .. msg, level or vim.log.levels.INFO)
end

-- client:request on 0.11+, client.request before (0.11 deprecates the latter).
local function request(client, method, params, handler, bufnr)
  if has('0.11') then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function resolve_buf(bufnr)
  if bufnr == nil or bufnr == 0 then
    return vim.api.nvim_get_current_buf()
  end
  return bufnr
end

--- The genls client attached to a buffer, or nil.
function M.client(bufnr)
  bufnr = resolve_buf(bufnr)
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ bufnr = bufnr, name = M.name })[1]
  end
  for _, c in pairs(vim.lsp.buf_get_clients(bufnr)) do
    if c.name == M.name then
      return c
    end
  end
end

-- Converts a byte column on row (both 0-based) to an LSP character offset in
-- the client's position encoding.
local function lsp_character(bufnr, row, col, encoding)
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  col = math.min(col, #line)
  if encoding == 'utf-8' then
    return col
  end
  if has('0.11') then
    return vim.str_utfindex(line, encoding == 'utf-32' and 'utf-32' or 'utf-16', col, false)
  end
  local utf32, utf16 = vim.str_utfindex(line, col)
  if encoding == 'utf-32' then
    return utf32
  end
  return utf16
end

local function lsp_range(bufnr, client, srow, scol, erow, ecol)
  local enc = client.offset_encoding or 'utf-16'
  return {
    start = { line = srow, character = lsp_character(bufnr, srow, scol, enc) },
    ['end'] = { line = erow, character = lsp_character(bufnr, erow, ecol, enc) },
  }
end

-- Byte length of the character starting at byte col of line (0 at the end).
local function char_len(line, col)
  if col >= #line then
    return 0
  end
  return #vim.fn.strpart(line, col, 1, true)
end

-- The range a user command covers: whole lines from line1 to line2, or the
-- exact characters when the command was run on a characterwise Visual
-- selection (v). Whole lines end at the end of line2, so that generated
-- text continues the selection, or, with through_eol, at the start of the
-- next line, so that a rewrite of whole lines is whole lines too.
local function command_range(bufnr, line1, line2, range_count, through_eol)
  local srow, erow = line1 - 1, line2 - 1
  local last = vim.api.nvim_buf_get_lines(bufnr, erow, erow + 1, false)[1] or ''
  local scol, ecol = 0, #last
  if range_count == 2 and vim.fn.visualmode() == 'v' then
    local s = vim.api.nvim_buf_get_mark(bufnr, '<')
    local e = vim.api.nvim_buf_get_mark(bufnr, '>')
    if s[1] == line1 and e[1] == line2 then
      scol = s[2]
      ecol = math.min(e[2], #last)
      ecol = ecol + char_len(last, ecol)
      return srow, scol, erow, ecol
    end
  end
  if through_eol then
    return srow, 0, erow + 1, 0
  end
  return srow, scol, erow, ecol
end

-- Where "Generate here" inserts: in Insert mode (e.g. from an <Cmd> mapping)
-- the cursor is between characters; in Normal mode it sits on one, and the
-- text goes after it, like `a`, which is where typing stopped after <Esc>.
local function cursor_position(bufnr)
  local pos = vim.api.nvim_win_get_cursor(0)
  local row, col = pos[1] - 1, pos[2]
  local mode = vim.api.nvim_get_mode().mode:sub(1, 1)
  if mode ~= 'i' and mode ~= 'R' then
    local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
    col = col + char_len(line, col)
  end
  return row, col
end

-- Runs command on the server; on_result, if given, gets the result once it
-- succeeded.
local function execute_command(client, bufnr, command, on_result)
  request(client, 'workspace/executeCommand', {
    command = command.command,
    arguments = command.arguments,
  }, function(err, result)
    if err then
      notify(command.command .. ': ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
    elseif on_result then
      on_result(result)
    end
  end, bufnr)
end

-- Runs a code action (or bare Command) returned by the server: through the
-- client's own command handler when it has one (as Neovim's code action menu
-- does), else on the server.
local function run_action(client, bufnr, action)
  if action.edit then
    vim.lsp.util.apply_workspace_edit(action.edit, client.offset_encoding or 'utf-16')
  end
  local command = action
  if type(action.command) == 'table' then
    command = action.command
  elseif type(action.command) ~= 'string' then
    return
  end
  local fn = client.commands and client.commands[command.command]
  if fn then
    fn(command, { client_id = client.id, bufnr = bufnr })
  else
    execute_command(client, bufnr, command)
  end
end

--- Asks the server for the code action of the given kind (and title, when
--- given: named actions share one kind) on range (LSP positions) and runs it.
--- Returns bufnr (0 resolved to the current buffer) and genls's client
--- attached to it; without one, tells the user and returns no client.
local function attached(bufnr)
  bufnr = resolve_buf(bufnr)
  local client = M.client(bufnr)
  if not client then
    notify('not attached to this buffer', vim.log.levels.WARN)
  end
  return bufnr, client
end

function M.code_action(bufnr, range, kind, title)
  local client
  bufnr, client = attached(bufnr)
  if not client then
    return
  end
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = range,
    context = { diagnostics = {}, only = { kind } },
  }
  request(client, 'textDocument/codeAction', params, function(err, actions)
    if err then
      notify('codeAction: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
      return
    end
    for _, action in ipairs(actions or {}) do
      if action.kind == kind and (title == nil or action.title == title) then
        local resolvable = type(client.server_capabilities.codeActionProvider) == 'table'
          and client.server_capabilities.codeActionProvider.resolveProvider
        if not action.edit and not action.command and resolvable then
          request(client, 'codeAction/resolve', action, function(rerr, resolved)
            if rerr then
              notify('codeAction/resolve: ' .. (rerr.message or vim.inspect(rerr)), vim.log.levels.ERROR)
              return
            end
            run_action(client, bufnr, resolved)
          end, bufnr)
        else
          run_action(client, bufnr, action)
        end
        return
      end
    end
    notify('no "' .. (title or kind) .. '" action here', vim.log.levels.WARN)
  end, bufnr)
end

--- Runs genls.generate on range (LSP positions) of the buffer. opts:
---   mode         'insert' (default), 'here' or 'rewrite'
---   instruction  what to do, in words ('' or nil: none)
---   action       the title of a named action from the settings
--- The command goes through the client-side handler, as a code action's
--- does, so that the generation is one undo step.
function M.generate(bufnr, range, opts)
  bufnr = resolve_buf(bufnr)
  opts = opts or {}
  local client = M.client(bufnr)
  if not client then
    notify('not attached to this buffer', vim.log.levels.WARN)
    return
  end
  local arg = { uri = vim.uri_from_bufnr(bufnr), range = range, mode = opts.mode or 'insert' }
  if opts.instruction and opts.instruction ~= '' then
    arg.instruction = opts.instruction
  end
  if opts.action then
    arg.action = opts.action
  end
  M.generate_command({ command = 'genls.generate', arguments = { arg } }, { client_id = client.id, bufnr = bufnr })
end

--- Generates from the text between two (0-based row, byte column) positions
--- and inserts the result right after it, following instruction if given.
function M.generate_range(bufnr, srow, scol, erow, ecol, instruction)
  local client
  bufnr, client = attached(bufnr)
  if not client then
    return
  end
  local range = lsp_range(bufnr, client, srow, scol, erow, ecol)
  if instruction and instruction ~= '' then
    M.generate(bufnr, range, { mode = 'insert', instruction = instruction })
  else
    M.code_action(bufnr, range, M.kinds.generate)
  end
end

--- Continues the document at the cursor ("Generate here"), following
--- instruction if given.
function M.generate_here(bufnr, instruction)
  local client
  bufnr, client = attached(bufnr)
  if not client then
    return
  end
  local row, col = cursor_position(bufnr)
  local range = lsp_range(bufnr, client, row, col, row, col)
  if instruction and instruction ~= '' then
    M.generate(bufnr, range, { mode = 'here', instruction = instruction })
  else
    M.code_action(bufnr, range, M.kinds.continue)
  end
end

--- Rewrites the text between two (0-based row, byte column) positions as
--- instruction says (nil or '': the server's default, "improve it"). The
--- new text streams in after the original, which stays, struck through,
--- until the rewrite is accepted (:GenlsAccept) or discarded.
function M.rewrite_range(bufnr, srow, scol, erow, ecol, instruction)
  local client
  bufnr, client = attached(bufnr)
  if not client then
    return
  end
  if srow == erow and scol == ecol then
    notify('nothing to rewrite: select the text to rewrite', vim.log.levels.WARN)
    return
  end
  M.generate(bufnr, lsp_range(bufnr, client, srow, scol, erow, ecol), { mode = 'rewrite', instruction = instruction })
end

--- Runs the named action (a code action from the settings' actions, by
--- title) on the text between two (0-based row, byte column) positions.
function M.action(bufnr, title, srow, scol, erow, ecol)
  local client
  bufnr, client = attached(bufnr)
  if not client then
    return
  end
  M.code_action(bufnr, lsp_range(bufnr, client, srow, scol, erow, ecol), M.kinds.action, title)
end

-- What vim.ui.input's built-in prompt returns on <Esc> (its cancelreturn):
-- tells a cancelled prompt from an empty answer, which 0.7 turns into nil.
local cancelled = '<genls: prompt cancelled>'

--- Asks for an instruction with vim.ui.input, then calls on_instruction
--- with it ('' for an empty answer: no instruction). Nothing happens when
--- the prompt is cancelled.
function M.ask_instruction(prompt, on_instruction)
  vim.ui.input({ prompt = prompt, cancelreturn = cancelled }, function(answer)
    if answer == cancelled then
      return
    end
    on_instruction(answer or '')
  end)
end

--- Cancels generation in the buffer, or everywhere when all is true.
function M.cancel(bufnr, all)
  local client
  bufnr, client = attached(bufnr)
  if not client then
    return
  end
  local arguments = {}
  if not all then
    arguments = { { uri = vim.uri_from_bufnr(bufnr) } }
  end
  execute_command(client, bufnr, { command = 'genls.cancel', arguments = arguments })
end

--- Accepts, discards or regenerates (action: 'accept', 'discard' or
--- 'regenerate') the pending generations in the buffer that touch range (LSP
--- positions; an empty range at the cursor works), or all of them when range
--- is nil. Says so when there was none; on_done, if given, gets the number of
--- generations the server acted on.
function M.review(action, bufnr, range, on_done)
  local client
  bufnr, client = attached(bufnr)
  if not client then
    return
  end
  local command = { command = 'genls.' .. action, arguments = { { uri = vim.uri_from_bufnr(bufnr), range = range } } }
  M.review_command(command, { client_id = client.id, bufnr = bufnr }, function(count)
    if count == 0 then
      notify(('no pending generation %s to %s'):format(range and 'here' or 'in this buffer', action))
    end
    if on_done then
      on_done(count)
    end
  end)
end

-- The cursor of the buffer's window (the current one if it shows the
-- buffer) as an empty LSP range: before the character under the cursor.
local function cursor_range(bufnr, client)
  local win = vim.api.nvim_get_current_win()
  if vim.api.nvim_win_get_buf(win) ~= bufnr then
    win = vim.fn.bufwinid(bufnr)
  end
  if win == -1 then
    return nil
  end
  local pos = vim.api.nvim_win_get_cursor(win)
  return lsp_range(bufnr, client, pos[1] - 1, pos[2], pos[1] - 1, pos[2])
end

-- accept, discard and regenerate: the generation at the cursor, or every
-- pending one in the buffer when all is true.
for _, action in ipairs({ 'accept', 'discard', 'regenerate' }) do
  M[action] = function(bufnr, all)
    local client
    bufnr, client = attached(bufnr)
    if not client then
      return
    end
    local range
    if not all then
      range = cursor_range(bufnr, client)
      if not range then
        notify('the buffer is in no window: no cursor to look at', vim.log.levels.WARN)
        return
      end
    end
    M.review(action, bufnr, range)
  end
end

--- Creates the buffer-local commands. Safe to call more than once; called
--- from on_attach (Neovim 0.7) and LspAttach (0.8+).
function M.on_attach(client, bufnr)
  if client and client.name ~= M.name then
    return
  end
  bufnr = resolve_buf(bufnr)
  vim.api.nvim_buf_create_user_command(bufnr, 'GenlsGenerate', function(cmd)
    -- The range and cursor as they are now, not once the prompt is answered.
    local generate
    if cmd.range > 0 then
      local srow, scol, erow, ecol = command_range(bufnr, cmd.line1, cmd.line2, cmd.range)
      generate = function(instruction)
        M.generate_range(bufnr, srow, scol, erow, ecol, instruction)
      end
    else
      local row, col = cursor_position(bufnr)
      generate = function(instruction)
        local c = M.client(bufnr)
        if not c then
          notify('not attached to this buffer', vim.log.levels.WARN)
          return
        end
        local range = lsp_range(bufnr, c, row, col, row, col)
        if instruction ~= '' then
          M.generate(bufnr, range, { mode = 'here', instruction = instruction })
        else
          M.code_action(bufnr, range, M.kinds.continue)
        end
      end
    end
    if cmd.args ~= '' or not cmd.bang then
      generate(cmd.args)
    else
      M.ask_instruction('genls: Generate (instruction, empty for none): ', generate)
    end
  end, {
    range = true,
    bang = true,
    nargs = '*',
    desc = 'genls: generate from the range and insert after it, or continue at the cursor; ! asks for an instruction',
  })
  vim.api.nvim_buf_create_user_command(bufnr, 'GenlsRewrite', function(cmd)
    local srow, scol, erow, ecol = command_range(bufnr, cmd.line1, cmd.line2, cmd.range, true)
    local function rewrite(instruction)
      M.rewrite_range(bufnr, srow, scol, erow, ecol, instruction)
    end
    if cmd.args ~= '' then
      rewrite(cmd.args)
    else
      M.ask_instruction('genls: Rewrite (instruction, empty for none): ', rewrite)
    end
  end, {
    range = true,
    nargs = '*',
    desc = 'genls: rewrite the range (default: this line) as instructed; review it with :GenlsAccept / :GenlsDiscard',
  })
  vim.api.nvim_buf_create_user_command(bufnr, 'GenlsCancel', function(cmd)
    M.cancel(bufnr, cmd.bang)
  end, { bang = true, desc = 'genls: cancel generation in this buffer (! = all buffers)' })
  local descriptions = {
    accept = 'keep the pending generation at the cursor (or range); ! = all in the buffer',
    discard = 'remove the pending generation at the cursor (or range); ! = all in the buffer',
    regenerate = 'remove the pending generation at the cursor (or range) and generate again; ! = all in the buffer',
  }
  for _, action in ipairs({ 'accept', 'discard', 'regenerate' }) do
    local name = 'Genls' .. action:sub(1, 1):upper() .. action:sub(2)
    vim.api.nvim_buf_create_user_command(bufnr, name, function(cmd)
      if cmd.bang or cmd.range == 0 then
        M[action](bufnr, cmd.bang)
        return
      end
      local c = M.client(bufnr)
      if not c then
        notify('not attached to this buffer', vim.log.levels.WARN)
        return
      end
      M.review(action, bufnr, lsp_range(bufnr, c, command_range(bufnr, cmd.line1, cmd.line2, cmd.range)))
    end, { bang = true, range = true, desc = 'genls: ' .. descriptions[action] })
  end
end

-- Progress, as reported by the standard $/progress machinery, per client id
-- and token: { title, message, percentage }.
local progress = {}

local function track_progress()
  local group = vim.api.nvim_create_augroup('genls_progress', { clear = true })
  if has_event('LspProgress') then
    vim.api.nvim_create_autocmd('LspProgress', {
      group = group,
      callback = function(ev)
        local data = ev.data or {}
        local client = vim.lsp.get_client_by_id(data.client_id)
        local params = data.params or data.result
        if not client or client.name ~= M.name or not params or type(params.value) ~= 'table' then
          return
        end
        progress[client.id] = progress[client.id] or {}
        local value = params.value
        if value.kind == 'end' then
          progress[client.id][params.token] = nil
        else
          local p = progress[client.id][params.token] or {}
          p.title = value.title or p.title
          p.message = value.message or p.message
          p.percentage = value.percentage or p.percentage
          progress[client.id][params.token] = p
        end
      end,
    })
  else
    vim.api.nvim_create_autocmd('User', {
      group = group,
      pattern = 'LspProgressUpdate',
      callback = function()
        for _, client in pairs(vim.lsp.get_active_clients()) do
          if client.name == M.name and client.messages then
            local current = {}
            for token, p in pairs(client.messages.progress or {}) do
              if not p.done and (p.title or p.message) then
                current[token] = { title = p.title, message = p.message, percentage = p.percentage }
              end
            end
            progress[client.id] = current
          end
        end
      end,
    })
  end
end

--- A short statusline string while genls reports progress, else ''.
--- Example: vim.o.statusline = "%f %{v:lua.require'genls'.status()}"
function M.status(bufnr)
  local client = M.client(bufnr)
  if not client or not progress[client.id] then
    return ''
  end
  for _, p in pairs(progress[client.id]) do
    local s = 'genls: ' .. (p.title or '')
    if p.message and p.message ~= '' then
      s = s .. ' ' .. p.message
    end
    if p.percentage then
      s = s .. string.format(' (%d%%)', p.percentage)
    end
    return s
  end
  return ''
end

--- Creates the LspAttach hook (0.8+), the hook that attaches buffers
--- vim.lsp.enable leaves out (0.11+) and progress tracking, once.
function M.init()
  if M._initialized then
    return
  end
  M._initialized = true
  track_progress()
  if has_event('LspAttach') then
    vim.api.nvim_create_autocmd('LspAttach', {
      group = vim.api.nvim_create_augroup('genls_attach', { clear = true }),
      callback = function(ev)
        local client = vim.lsp.get_client_by_id(ev.data.client_id)
        if client and client.name == M.name then
          M.on_attach(client, ev.buf)
        end
      end,
    })
  end
  if has('0.11') then
    vim.api.nvim_create_autocmd({ 'BufReadPost', 'BufNewFile', 'BufEnter' }, {
      group = vim.api.nvim_create_augroup('genls_enable', { clear = true }),
      callback = function(ev)
        M.attach_enabled(ev.buf)
      end,
    })
  end
end

-- Undo: for each buffer, undotree().seq_cur right after genls's last edit
-- there. The next edit is joined to it (:undojoin) only while that edit is
-- still the buffer's newest change and not undone, so that one `u` removes a
-- whole generation, the user's own changes in between are never merged into
-- it, and :undojoin never runs after an undo (E790). A new generation forgets
-- the buffer's entry (see generate_command).
local undo_seq = {}

local function undo_state(bufnr)
  local tree = vim.api.nvim_buf_call(bufnr, function()
    return vim.fn.undotree()
  end)
  return tree.seq_cur, tree.seq_last
end

local function join_undo(bufnr)
  local seq = undo_seq[bufnr]
  if seq == nil or not vim.api.nvim_buf_is_loaded(bufnr) then
    return
  end
  local cur, last = undo_state(bufnr)
  if cur ~= seq or last ~= seq then
    return
  end
  local ok, err = pcall(vim.api.nvim_buf_call, bufnr, function()
    vim.cmd('undojoin')
  end)
  if not ok then
    undo_seq[bufnr] = nil
    notify('could not join the edit to the previous one for undo: ' .. tostring(err), vim.log.levels.WARN)
  end
end

local function attached(bufnr, client_id)
  if vim.lsp.buf_is_attached then
    return vim.lsp.buf_is_attached(bufnr, client_id)
  end
  return true
end

-- The version Neovim last reported for the buffer: the maintained entry of
-- vim.lsp.util.buf_versions (rawget: some versions answer 0 or a deprecation
-- warning for others), else the changedtick that later versions send.
local function buf_version(bufnr)
  local versions = vim.lsp.util.buf_versions
  local v = type(versions) == 'table' and rawget(versions, bufnr) or nil
  if v == nil and vim.api.nvim_buf_is_loaded(bufnr) then
    v = vim.api.nvim_buf_get_changedtick(bufnr)
  end
  return v
end

-- The buffer a server's URI names, without creating one the way
-- vim.uri_to_bufnr does. Unnamed buffers (:enew) all have the URI "file://",
-- which vim.uri_to_bufnr turns into a new empty buffer each time: here it
-- names the unnamed buffer attached to the client, and when there are
-- several, the one at the edit's version (the server follows the one last
-- changed), else the current one.
local function buf_for_uri(uri, client_id, version)
  local unnamed = {}
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(b) and vim.uri_from_bufnr(b) == uri then
      if vim.api.nvim_buf_get_name(b) ~= '' then
        return b
      end
      if attached(b, client_id) then
        table.insert(unnamed, b)
      end
    end
  end
  if #unnamed == 1 then
    return unnamed[1]
  end
  if #unnamed > 1 then
    local at_version = vim.tbl_filter(function(b)
      return type(version) == 'number' and buf_version(b) == version
    end, unnamed)
    if #at_version == 1 then
      return at_version[1]
    end
    local current = vim.api.nvim_get_current_buf()
    if vim.tbl_contains(unnamed, current) then
      return current
    end
    return nil, 'several unnamed buffers share the URI ' .. uri
  end
  if vim.uri_to_fname(uri) == '' then
    return nil, 'no unnamed buffer is attached for ' .. uri
  end
  return vim.uri_to_bufnr(uri)
end

-- The text edits of a WorkspaceEdit per buffer, as { bufnr, version, edits },
-- or nil when it holds resource operations (create, rename, delete files).
local function document_edits(edit, client_id)
  local docs = {}
  if edit.documentChanges then
    for _, change in ipairs(edit.documentChanges) do
      if change.kind or not change.textDocument then
        return nil
      end
      local bufnr, err = buf_for_uri(change.textDocument.uri, client_id, change.textDocument.version)
      if not bufnr then
        return nil, err
      end
      table.insert(docs, { bufnr = bufnr, version = change.textDocument.version, edits = change.edits or {} })
    end
  else
    for uri, edits in pairs(edit.changes or {}) do
      local bufnr, err = buf_for_uri(uri, client_id)
      if not bufnr then
        return nil, err
      end
      table.insert(docs, { bufnr = bufnr, edits = edits })
    end
  end
  return docs
end

--- genls's own workspace/applyEdit handler (clients look up their own
--- handlers before the global table). Unlike the default one it answers
--- applied = false for an edit addressed to an older version of the buffer
--- (the default prints "newer than edits", drops the edit and still answers
--- applied = true, after which genls must stop rather than write text twice),
--- applies edits without printing their label, and joins the edits of one
--- generation into one undo block.
function M.apply_edit(_, params, ctx)
  if not params or not params.edit then
    return { applied = false, failureReason = 'no edit' }
  end
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  local encoding = client and client.offset_encoding or 'utf-16'
  local docs, err = document_edits(params.edit, ctx.client_id)
  if err then
    return { applied = false, failureReason = err }
  end
  if not docs then
    local ok, perr = pcall(vim.lsp.util.apply_workspace_edit, params.edit, encoding)
    if not ok then
      return { applied = false, failureReason = tostring(perr) }
    end
    return { applied = true }
  end
  for _, doc in ipairs(docs) do
    local current = type(doc.version) == 'number' and doc.version > 0 and buf_version(doc.bufnr)
    if current and current > doc.version then
      return {
        applied = false,
        failureReason = ('buffer version %d is newer than the edit (%d)'):format(current, doc.version),
      }
    end
  end
  for _, doc in ipairs(docs) do
    join_undo(doc.bufnr)
  end
  local ok, aerr = pcall(function()
    for _, doc in ipairs(docs) do
      vim.lsp.util.apply_text_edits(doc.edits, doc.bufnr, encoding)
    end
  end)
  for _, doc in ipairs(docs) do
    if vim.api.nvim_buf_is_loaded(doc.bufnr) then
      undo_seq[doc.bufnr] = (undo_state(doc.bufnr))
    end
  end
  if not ok then
    return { applied = false, failureReason = tostring(aerr) }
  end
  return { applied = true }
end

--- Client-side handler of the genls.generate command (clients run their own
--- handler for a command, when they have one, instead of sending it): a new
--- generation starts a new undo block in its buffer; then the server runs it.
function M.generate_command(command, ctx)
  local arg = command.arguments and command.arguments[1]
  if type(arg) == 'table' and type(arg.uri) == 'string' then
    local bufnr = buf_for_uri(arg.uri, ctx.client_id)
    if bufnr then
      undo_seq[bufnr] = nil
    end
  end
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if client then
    execute_command(client, ctx.bufnr, command)
  end
end

-- The buffers a command's arguments name: the buffer of each argument's
-- uri, or, with no arguments (the command then applies to every document),
-- every buffer attached to the client.
local function command_buffers(command, client_id)
  local bufs = {}
  local args = command.arguments or {}
  if #args == 0 then
    for _, b in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(b) and attached(b, client_id) then
        table.insert(bufs, b)
      end
    end
  end
  for _, arg in ipairs(args) do
    if type(arg) == 'table' and type(arg.uri) == 'string' then
      local b = buf_for_uri(arg.uri, client_id)
      if b then
        table.insert(bufs, b)
      end
    end
  end
  return bufs
end

local function new_undo_blocks(bufs)
  for _, b in ipairs(bufs) do
    undo_seq[b] = nil
  end
end

--- Client-side handler of genls.accept, genls.discard and genls.regenerate,
--- however they run (:GenlsDiscard, a code action, a code lens). The edit
--- that removes a generation starts an undo block of its own, so that `u`
--- after a Discard brings the text back instead of undoing the generation
--- too. A Regenerate's new text joins its removal: one `u` undoes the
--- Regenerate. on_result, if given, gets the server's result.
function M.review_command(command, ctx, on_result)
  if command.command == 'genls.discard' or command.command == 'genls.regenerate' then
    new_undo_blocks(command_buffers(command, ctx.client_id))
  end
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if not client then
    return
  end
  execute_command(client, ctx.bufnr, command, on_result)
end

-- Problems the server reported with the settings (window/showMessage), per
-- client id, for :checkhealth genls.
M._settings_problems = {}

--- genls's own window/showMessage handler: remembers messages about the
--- settings for :checkhealth genls, then shows the message as usual.
function M.show_message(err, result, ctx, config)
  if type(result) == 'table' and type(result.message) == 'string' and ctx and ctx.client_id then
    if result.message:find('invalid setting', 1, true) or result.message:find('unknown setting', 1, true) then
      local problems = M._settings_problems[ctx.client_id] or {}
      table.insert(problems, { type = result.type, message = result.message })
      M._settings_problems[ctx.client_id] = problems
    end
  end
  local default = vim.lsp.handlers['window/showMessage']
  if default then
    return default(err, result, ctx, config)
  end
end

-- This plugin's own lsp/genls.lua, found from this file rather than through
-- 'runtimepath', where a user's lsp/genls.lua (a partial override) may come
-- first.
local function defaults_file()
  local source = debug.getinfo(1, 'S').source
  if source:sub(1, 1) == '@' then
    local file = vim.fn.fnamemodify(source:sub(2), ':p:h:h:h') .. '/lsp/genls.lua'
    if vim.fn.filereadable(file) == 1 then
      return file
    end
  end
  return vim.api.nvim_get_runtime_file('lsp/genls.lua', false)[1]
end

-- The defaults shipped in lsp/genls.lua (one source for every setup path).
local function defaults()
  local file = defaults_file()
  local ok, config = false, nil
  if file then
    ok, config = pcall(dofile, file)
  end
  if not ok or type(config) ~= 'table' then
    config = { cmd = { 'genls' }, root_markers = { '.git' }, init_options = {}, flags = { debounce_text_changes = 0 } }
  end
  return config
end

-- What genls's client needs whatever the setup: its own applyEdit and
-- showMessage handlers and its client-side genls.generate command.
M.handlers = {
  ['workspace/applyEdit'] = function(...)
    return M.apply_edit(...)
  end,
  ['window/showMessage'] = function(...)
    return M.show_message(...)
  end,
}
M.commands = {
  ['genls.generate'] = function(...)
    return M.generate_command(...)
  end,
}
for _, action in ipairs({ 'accept', 'discard', 'regenerate' }) do
  M.commands['genls.' .. action] = function(command, ctx)
    return M.review_command(command, ctx)
  end
end

-- The parts of a client configuration that opts set (see setup).
local function overrides(opts)
  local config = {}
  for _, key in ipairs({ 'cmd', 'root_markers', 'filetypes', 'capabilities', 'flags', 'handlers', 'on_attach' }) do
    if opts[key] then
      config[key] = opts[key]
    end
  end
  if opts.settings then
    config.init_options = opts.settings
    config.settings = { genls = opts.settings }
  end
  return config
end

--- The client configuration for opts (see setup).
function M.config(opts)
  opts = opts or {}
  local config = defaults()
  local set = overrides(opts)
  for _, key in ipairs({ 'cmd', 'root_markers', 'filetypes', 'init_options', 'settings', 'capabilities' }) do
    if set[key] ~= nil then
      config[key] = set[key]
    end
  end
  config.name = M.name
  config.flags = vim.tbl_extend('force', config.flags or {}, opts.flags or {})
  config.handlers = vim.tbl_extend('force', config.handlers or {}, M.handlers, opts.handlers or {})
  config.commands = vim.tbl_extend('force', config.commands or {}, M.commands)
  local user_on_attach = opts.on_attach
  config.on_attach = function(client, bufnr)
    M.on_attach(client, bufnr)
    if user_on_attach then
      user_on_attach(client, bufnr)
    end
  end
  return config
end

local function root_dir(bufnr, markers)
  local name = vim.api.nvim_buf_get_name(bufnr)
  local dir = name ~= '' and vim.fn.fnamemodify(name, ':p:h') or vim.fn.getcwd()
  for _, marker in ipairs(markers or {}) do
    local found = vim.fn.finddir(marker, vim.fn.fnameescape(dir) .. ';')
    if found == '' then
      found = vim.fn.findfile(marker, vim.fn.fnameescape(dir) .. ';')
    end
    if found ~= '' then
      local path = vim.fn.fnamemodify(found, ':p'):gsub('/$', '')
      return vim.fn.fnamemodify(path, ':h')
    end
  end
  return dir
end

local reported = {} -- commands already reported as missing

-- Whether cmd can run; says so loudly, once per program, when it cannot
-- (vim.lsp.enable skips a missing program without a word).
local function runnable(cmd)
  if type(cmd) ~= 'table' or type(cmd[1]) ~= 'string' then
    return true
  end
  if vim.fn.executable(cmd[1]) == 1 then
    return true
  end
  if not reported[cmd[1]] then
    reported[cmd[1]] = true
    notify(
      ('cannot start the language server: %q is not an executable program (not installed, or not on PATH). '
        .. 'Install it with `go install github.com/genls/genls@latest`, or set cmd to its path.'):format(cmd[1]),
      vim.log.levels.ERROR
    )
  end
  return false
end

-- Buffers genls attaches to: any loaded buffer of a file or of no file
-- (:enew), not help, terminal, quickfix or other special buffers.
local function attachable(bufnr)
  return vim.api.nvim_buf_is_valid(bufnr) and vim.api.nvim_buf_is_loaded(bufnr) and vim.bo[bufnr].buftype == ''
end

local started = {} -- Neovim 0.7: root_dir -> client id

--- Starts (or reuses) a genls client for the buffer and attaches it; used
--- before 0.11, where vim.lsp.enable does this.
function M.start(bufnr, config)
  bufnr = resolve_buf(bufnr)
  config = config or M._config or M.config()
  if not attachable(bufnr) or M.client(bufnr) then
    return
  end
  if config.filetypes and not vim.tbl_contains(config.filetypes, vim.bo[bufnr].filetype) then
    return
  end
  if not runnable(config.cmd) then
    return
  end
  local cfg = vim.deepcopy(config)
  cfg.root_dir = root_dir(bufnr, cfg.root_markers)
  cfg.root_markers = nil
  if vim.lsp.start then
    if has('0.9') then
      return vim.lsp.start(cfg, { bufnr = bufnr })
    end
    -- 0.8's vim.lsp.start ignores opts.bufnr and attaches the current buffer.
    return vim.api.nvim_buf_call(bufnr, function()
      return vim.lsp.start(cfg, { bufnr = bufnr })
    end)
  end
  local id = started[cfg.root_dir]
  local client = id and vim.lsp.get_client_by_id(id)
  if not client or client.is_stopped() then
    cfg.workspace_folders = {
      { uri = vim.uri_from_fname(cfg.root_dir), name = cfg.root_dir },
    }
    id = vim.lsp.start_client(cfg)
    if not id then
      notify('could not start ' .. table.concat(cfg.cmd, ' '), vim.log.levels.ERROR)
      return
    end
    started[cfg.root_dir] = id
  end
  vim.lsp.buf_attach_client(bufnr, id)
  return id
end

-- Whether vim.lsp.enable(M.name) is in force (0.11+).
local function enabled()
  if vim.lsp.is_enabled then
    return vim.lsp.is_enabled(M.name)
  end
  return type(vim.lsp._enabled_configs) == 'table' and vim.lsp._enabled_configs[M.name] ~= nil
end

--- Neovim 0.11+: attaches genls to the buffer when vim.lsp.enable('genls')
--- is in force and did not. vim.lsp.enable starts servers on FileType only,
--- so buffers with no filetype (:enew, unknown extensions) never get one,
--- and 0.11.0 also leaves alone the buffers already open when it runs. A
--- config restricted to filetypes is left to vim.lsp.enable.
function M.attach_enabled(bufnr)
  bufnr = resolve_buf(bufnr)
  if not (vim.lsp.config and vim.lsp.start and enabled()) then
    return
  end
  if not attachable(bufnr) or M.client(bufnr) then
    return
  end
  local config = vim.lsp.config[M.name]
  if type(config) ~= 'table' or config.filetypes or not runnable(config.cmd) then
    return
  end
  config = vim.deepcopy(config)
  local function start()
    if not config.root_dir and config.root_markers and vim.fs and vim.fs.root then
      config.root_dir = vim.fs.root(bufnr, config.root_markers)
    end
    vim.lsp.start(config, { bufnr = bufnr, reuse_client = config.reuse_client })
  end
  if type(config.root_dir) == 'function' then
    config.root_dir(bufnr, function(dir)
      config.root_dir = dir
      vim.schedule(start)
    end)
  else
    start()
  end
end

local function attach_loaded(attach)
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if attachable(bufnr) then
      attach(bufnr)
    end
  end
end

--- Configures and enables genls.
---
--- opts:
---   cmd          command line (default { 'genls' })
---   settings     the genls settings table: endpoint, parameters, prompt, log;
---                sent as initializationOptions and answered to
---                workspace/configuration (section "genls")
---   filetypes    restrict to these filetypes (default: all)
---   root_markers default { '.git' }
---   on_attach    called after the genls commands are created
---   capabilities, flags, handlers  passed to the client
---   autostart    false to only define the config (default true)
---
--- On 0.11+ only what opts set goes to vim.lsp.config, above lsp/genls.lua
--- files in 'runtimepath'.
function M.setup(opts)
  opts = opts or {}
  M.init()
  if vim.lsp.config and vim.lsp.enable then
    M._config = nil
    vim.lsp.config(M.name, overrides(opts))
    if opts.autostart ~= false then
      vim.lsp.enable(M.name)
      attach_loaded(M.attach_enabled)
    end
    return
  end
  local config = M.config(opts)
  M._config = config
  if opts.autostart == false then
    return
  end
  local group = vim.api.nvim_create_augroup('genls_start', { clear = true })
  vim.api.nvim_create_autocmd({ 'BufReadPost', 'BufNewFile', 'BufEnter', 'FileType' }, {
    group = group,
    callback = function(ev)
      M.start(ev.buf, config)
    end,
  })
  attach_loaded(function(bufnr)
    M.start(bufnr, config)
  end)
end

--- Registers genls with nvim-lspconfig's legacy framework, for
--- require('lspconfig').genls.setup{}. Returns false without lspconfig.
function M.register_lspconfig()
  local ok, configs = pcall(require, 'lspconfig.configs')
  if not ok then
    return false
  end
  M.init()
  if not configs.genls then
    local util = require('lspconfig.util')
    local config = M.config()
    configs.genls = {
      default_config = {
        cmd = config.cmd,
        root_dir = util.root_pattern(unpack(config.root_markers)),
        single_file_support = true,
        init_options = config.init_options,
        flags = config.flags,
        handlers = config.handlers,
        commands = config.commands,
        on_attach = config.on_attach,
      },
      docs = { description = 'genls: stream LLM output into the document.' },
    }
  end
  return true
end

return M
