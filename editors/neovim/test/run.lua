-- Drives the genls plugin in headless Neovim for neovim_test.go:
--   nvim --headless -u NONE -i NONE -n --cmd 'set rtp^=editors/neovim' -c 'luafile test/run.lua'
-- Everything comes from GENLS_TEST_* environment variables; the outcome is
-- the written buffer (GENLS_TEST_OUT) plus a JSON report (GENLS_TEST_RESULT).
local function env(key, default)
  local v = os.getenv('GENLS_TEST_' .. key)
  if v == nil or v == '' then
    return default
  end
  return v
end

local bin = env('BIN')
local file = env('FILE')
local out = env('OUT')
local result = env('RESULT')
local scenario = env('SCENARIO', 'range')
local timeout = tonumber(env('TIMEOUT_MS', '20000'))
-- Bounds past which the session stops waiting: a server that re-sends its
-- text forever grows the buffer without end, and must fail fast.
local max_edits = tonumber(env('MAX_EDITS', '0'))
local max_bytes = tonumber(env('MAX_BYTES', '0'))

local R = {
  nvim = tostring(vim.version().major .. '.' .. vim.version().minor .. '.' .. vim.version().patch),
  scenario = scenario,
  progress_begin = false,
  progress_end = false,
  statuses = {},
  messages = {},
  changes = 0,
  apply_edits = 0,
}

local function runaway()
  return R.runaway ~= nil
end

local function now()
  return vim.loop.hrtime() / 1e6
end

local function finish(code, err)
  R.code = code
  R.error = err
  vim.fn.writefile({ vim.fn.json_encode(R) }, result)
  vim.cmd('qa!')
end

local ok, err = pcall(function()
  vim.lsp.set_log_level(env('NVIM_LOGLEVEL', 'WARN'))
  -- Messages the plugin or the server (window/showMessage) show the user.
  vim.notify = function(msg, level)
    table.insert(R.messages, { msg = msg, level = level })
  end

  local genls = require('genls')
  genls.setup({
    cmd = { bin, '--log-level', 'debug', '--log-file', env('SERVER_LOG') },
    settings = vim.fn.json_decode(env('SETTINGS', '{}')),
    handlers = {
      -- The plugin's own handler, counting workspace/applyEdit requests;
      -- past max_edits the session is a runaway and further edits are
      -- refused.
      ['workspace/applyEdit'] = function(err, params, ctx, config)
        R.apply_edits = R.apply_edits + 1
        if max_edits > 0 and R.apply_edits > max_edits and not R.runaway then
          R.runaway = string.format('more than %d workspace/applyEdit requests', max_edits)
        end
        if R.runaway then
          return { applied = false, failureReason = 'test session stopped: ' .. R.runaway }
        end
        return genls.apply_edit(err, params, ctx, config)
      end,
    },
  })

  -- Progress as the standard machinery reports it.
  local function on_progress(params)
    if params and type(params.value) == 'table' then
      if params.value.kind == 'begin' then
        R.progress_begin = true
      elseif params.value.kind == 'end' then
        R.progress_end = true
      end
    end
  end
  if vim.fn.has('nvim-0.10') == 1 then
    vim.api.nvim_create_autocmd('LspProgress', {
      callback = function(ev)
        on_progress(ev.data and (ev.data.params or ev.data.result))
      end,
    })
  else
    vim.api.nvim_create_autocmd('User', {
      pattern = 'LspProgressUpdate',
      callback = function()
        for _, c in pairs(vim.lsp.get_active_clients()) do
          for _, p in pairs(c.messages.progress) do
            R.progress_begin = true
            if p.done then
              R.progress_end = true
            end
          end
        end
      end,
    })
  end
  local function sample_status()
    local s = genls.status()
    if s ~= "" and #R.statuses < 5 and R.statuses[#R.statuses] ~= s then
      table.insert(R.statuses, s)
    end
  end

  vim.cmd('edit ' .. vim.fn.fnameescape(file))
  local bufnr = vim.api.nvim_get_current_buf()
  R.fileformat = vim.bo[bufnr].fileformat
  local last_change = now()
  vim.api.nvim_buf_attach(bufnr, false, {
    on_lines = function()
      R.changes = R.changes + 1
      last_change = now()
      if max_bytes > 0 and not R.runaway then
        local size = vim.api.nvim_buf_get_offset(bufnr, vim.api.nvim_buf_line_count(bufnr))
        if size > max_bytes then
          R.runaway = string.format('the buffer grew to %d bytes (more than %d) after %d workspace/applyEdit requests',
            size, max_bytes, R.apply_edits)
        end
      end
    end,
  })

  local function server_quit()
    for _, m in ipairs(R.messages) do
      if tostring(m.msg):find('quit with exit code', 1, true) then
        return true
      end
    end
    return false
  end
  vim.wait(10000, function()
    local c = genls.client(bufnr)
    return (c ~= nil and c.initialized == true) or server_quit()
  end, 10)
  local attached = genls.client(bufnr)
  if not attached or not attached.initialized then
    error('genls did not attach and initialize' .. (server_quit() and ' (the server exited)' or ''))
  end
  R.commands = vim.fn.exists(':GenlsGenerate') == 2 and vim.fn.exists(':GenlsCancel') == 2
  local client = genls.client(bufnr)
  R.offset_encoding = client.offset_encoding

  local function text()
    return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n')
  end
  local function quiet_for(ms)
    return now() - last_change >= ms
  end

  if scenario == 'visual' then
    -- A characterwise Visual selection from byte column a to b (inclusive)
    -- on line 1, then :'<,'>GenlsGenerate as typing ':' in Visual mode gives.
    local a, b = env('SELECT'):match('^(%d+),(%d+)$')
    vim.api.nvim_win_set_cursor(0, { 1, tonumber(a) })
    vim.cmd('normal! v')
    vim.api.nvim_win_set_cursor(0, { 1, tonumber(b) })
    vim.cmd('normal! \27')
    vim.cmd("'<,'>GenlsGenerate")
  elseif scenario == 'here' then
    local row, col = env('CURSOR'):match('^(%d+),(%d+)$')
    vim.api.nvim_win_set_cursor(0, { tonumber(row), tonumber(col) })
    vim.cmd('GenlsGenerate')
  else
    vim.cmd(env('RANGE', '1,1') .. 'GenlsGenerate')
  end

  if scenario == 'typing' then
    -- The user types elsewhere while the text streams in: a new first line
    -- once the first token has arrived, and more at the end of the last line.
    local wait_for = env('TYPE_AFTER')
    if not vim.wait(timeout, function()
      return runaway() or text():find(wait_for, 1, true) ~= nil
    end, 1) then
      error('buffer never contained ' .. vim.inspect(wait_for) .. ': ' .. vim.inspect(text()))
    end
    if not runaway() then
      vim.api.nvim_buf_set_lines(bufnr, 0, 0, false, { 'typed above' })
      local last = vim.api.nvim_buf_line_count(bufnr)
      local line = vim.api.nvim_buf_get_lines(bufnr, last - 1, last, false)[1]
      vim.api.nvim_buf_set_text(bufnr, last - 1, #line, last - 1, #line, { ' and below' })
      R.typed_at_changes = R.changes
    end
  end

  if scenario == 'cancel' then
    local wait_for = env('CANCEL_AFTER')
    if not vim.wait(timeout, function()
      sample_status()
      return runaway() or text():find(wait_for, 1, true) ~= nil
    end, 5) then
      error('buffer never contained ' .. vim.inspect(wait_for) .. ': ' .. vim.inspect(text()))
    end
    R.cancelled_at_changes = R.changes
    vim.cmd('GenlsCancel')
  end

  -- Done when the server's progress has ended and the buffer has been quiet
  -- for a moment (edits are applied before the progress ends, but allow for
  -- a stray late one to show up as a failure rather than a race).
  R.finished = vim.wait(timeout, function()
    sample_status()
    return runaway() or (R.progress_end and quiet_for(300))
  end, 5) and not runaway()
  R.status_after = genls.status()
  R.bytes = vim.api.nvim_buf_get_offset(bufnr, vim.api.nvim_buf_line_count(bufnr))

  vim.cmd('silent write! ' .. vim.fn.fnameescape(out))

  local id = client.id
  vim.lsp.stop_client(id)
  R.server_stopped = vim.wait(5000, function()
    return vim.lsp.get_client_by_id(id) == nil
  end, 10)
end)

if ok then
  finish(0)
else
  finish(1, tostring(err))
end
