-- Drives the genls plugin in headless Neovim for neovim_test.go:
--   nvim --headless -u NONE -i NONE -n --cmd 'set rtp^=editors/neovim' -c 'luafile test/run.lua'
-- Everything comes from GENLS_TEST_* environment variables; the outcome is
-- the written buffer (GENLS_TEST_OUT) plus a JSON report (GENLS_TEST_RESULT).
--
-- The session runs as a coroutine that yields to Neovim's main loop whenever
-- it waits, so that edits from the server arrive as they do in a user's
-- editor: each in its own turn of the main loop, which closes the undo block
-- of the change before (a vim.wait inside one command would merge them all).
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
-- How genls starts: setup (with GENLS_TEST_SETTINGS), setup-nosettings
-- (require('genls').setup() without settings), start-empty (the client
-- started directly from require('genls').config(), whose init_options = {}).
local how = env('SETUP', 'setup')
-- file: edit GENLS_TEST_FILE; enew: an unnamed buffer (:enew) holding the
-- file's text.
local buffer = env('BUFFER', 'file')
-- What the session does once genls is attached: gen (generate, per
-- scenario, and wait for the end), undo, actions (list the code actions),
-- health (:checkhealth genls), settle (wait a moment), await-message (wait
-- for a vim.notify), accept, discard, regenerate (:GenlsAccept, … and wait
-- for the server's answer; regenerate also for the new generation's end),
-- lens (fetch the code lenses), rewrite (a linewise Visual selection of
-- the step's lines, then :'<,'>GenlsRewrite, whose prompt is answered with
-- GENLS_TEST_INSTRUCTION), rewrite-inline (:{lines}GenlsRewrite
-- GENLS_TEST_INSTRUCTION), gen-ask (:{lines}GenlsGenerate!, the prompt
-- answered likewise), gen-inline (:{lines}GenlsGenerate
-- GENLS_TEST_INSTRUCTION); each generation step waits for its end.
--
-- A step is NAME[!][@ROW:COL][:FIRST-LAST][=MARKS]: ! runs the command with
-- a bang (:GenlsDiscard!); @ROW:COL puts the cursor there first (1-based
-- row, byte column); :FIRST-LAST is the range of lines a gen step
-- generates from (default GENLS_TEST_RANGE); =MARKS waits, after the step,
-- until the buffer has that many genls diagnostics, none of a running
-- generation (they arrive on their own time).
local steps = vim.split(env('STEPS', 'gen'), ',', { plain = true })

local function parse_step(s)
  local name, rest = s:match('^([%a-]+)(.*)$')
  if not name then
    error('bad step ' .. s)
  end
  local row, col = rest:match('@(%d+):(%d+)')
  local first, last = rest:match(':(%d+)%-(%d+)')
  return {
    name = name,
    bang = rest:find('!', 1, true) ~= nil,
    cursor = row and { tonumber(row), tonumber(col) } or nil,
    lines = first and (first .. ',' .. last) or nil,
    marks = tonumber(rest:match('=(%d+)')),
  }
end
local timeout = tonumber(env('TIMEOUT_MS', '20000'))
-- Bounds past which the session stops waiting: a server that re-sends its
-- text forever grows the buffer without end, and must fail fast.
local max_edits = tonumber(env('MAX_EDITS', '0'))
local max_bytes = tonumber(env('MAX_BYTES', '0'))
-- Makes the Nth workspace/applyEdit request stale: the user types before
-- Neovim handles it.
local stale_at = tonumber(env('STALE_AT', '0'))

local R = {
  nvim = tostring(vim.version().major .. '.' .. vim.version().minor .. '.' .. vim.version().patch),
  scenario = scenario,
  progress_begin = false,
  progress_end = false,
  finished = true,
  statuses = {},
  messages = {},
  changes = 0,
  apply_edits = 0,
  rejected_edits = 0,
  steps = {},
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

local session -- the coroutine

local function resume()
  local ok, err = coroutine.resume(session)
  if not ok then
    finish(1, tostring(err))
  elseif coroutine.status(session) == 'dead' then
    finish(0)
  end
end

-- Waits up to ms for pred, checking every interval ms from a turn of the
-- main loop of its own.
local function wait(ms, pred, interval)
  local deadline = now() + ms
  while true do
    if pred() then
      return true
    end
    if now() >= deadline then
      return false
    end
    vim.defer_fn(resume, interval or 5)
    coroutine.yield()
  end
end

local function run()
  -- As in a user's configuration: a .txt file is "text", a file named
  -- "notes" has no filetype.
  vim.cmd('filetype on')
  vim.lsp.set_log_level(env('NVIM_LOGLEVEL', 'WARN'))
  -- Messages the plugin or the server (window/showMessage on 0.8+) show
  -- through vim.notify; the others land in :messages, read per step.
  vim.notify = function(msg, level)
    table.insert(R.messages, { msg = msg, level = level })
  end

  local genls = require('genls')
  local bufnr
  -- genls.apply_edit, which the plugin's own workspace/applyEdit handler
  -- calls, counts the requests; past max_edits the session is a runaway and
  -- further edits are refused.
  local apply_edit = genls.apply_edit
  genls.apply_edit = function(err, params, ctx, config)
    R.apply_edits = R.apply_edits + 1
    if max_edits > 0 and R.apply_edits > max_edits and not R.runaway then
      R.runaway = string.format('more than %d workspace/applyEdit requests', max_edits)
    end
    if R.runaway then
      return { applied = false, failureReason = 'test session stopped: ' .. R.runaway }
    end
    if R.apply_edits == stale_at then
      vim.api.nvim_buf_set_lines(bufnr, 0, 0, false, { 'typed above' })
    end
    local answer = apply_edit(err, params, ctx, config)
    if not answer.applied then
      R.rejected_edits = R.rejected_edits + 1
    end
    return answer
  end
  -- genls.review_command runs :GenlsAccept, :GenlsDiscard and
  -- :GenlsRegenerate (and their code actions): each answer is recorded.
  local reviews = {}
  local review_command = genls.review_command
  genls.review_command = function(command, ctx, on_result)
    return review_command(command, ctx, function(result)
      table.insert(reviews, { command = command.command, arguments = command.arguments, result = result })
      if on_result then
        on_result(result)
      end
    end)
  end
  -- vim.ui.input, as a UI plugin replaces it: answers GENLS_TEST_INSTRUCTION
  -- (an empty one as nil, as 0.7's built-in prompt does) and records the
  -- prompts.
  R.prompts = {}
  vim.ui.input = function(opts, on_confirm)
    table.insert(R.prompts, opts and opts.prompt or '')
    local answer = env('INSTRUCTION', '')
    vim.schedule(function()
      on_confirm(answer ~= '' and answer or nil)
    end)
  end
  local cmd = { bin, '--log-level', 'debug', '--log-file', env('SERVER_LOG') }

  local function open_buffer()
    if buffer == 'enew' then
      vim.cmd('enew')
      bufnr = vim.api.nvim_get_current_buf()
      vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, vim.fn.readfile(file))
    else
      vim.cmd('edit ' .. vim.fn.fnameescape(file))
      bufnr = vim.api.nvim_get_current_buf()
    end
    R.fileformat = vim.bo[bufnr].fileformat
    R.filetype = vim.bo[bufnr].filetype
  end

  local function start_genls()
    if how == 'start-empty' then
      genls.init()
      local config = genls.config({ cmd = cmd })
      R.init_options = vim.fn.json_encode(config.init_options)
      config.root_dir = vim.fn.getcwd()
      if vim.lsp.start then
        vim.lsp.start(config)
      else
        vim.lsp.buf_attach_client(bufnr, vim.lsp.start_client(config))
      end
    elseif how == 'setup-nosettings' then
      genls.setup({ cmd = cmd })
    else
      genls.setup({ cmd = cmd, settings = vim.fn.json_decode(env('SETTINGS', '{}')) })
    end
  end

  if buffer == 'enew' then
    -- :enew in a running session, with 'hidden' (the default from 0.9):
    -- the unnamed buffer Neovim started with, written in, stays loaded and
    -- attached, and shares the new buffer's URI.
    vim.o.hidden = true
    vim.api.nvim_buf_set_lines(0, 0, -1, false, { 'scratch' })
    start_genls()
    open_buffer()
  else
    open_buffer()
    start_genls()
  end

  -- Progress as the standard machinery reports it; each generation ends
  -- its own token.
  local ended = {}
  R.progress_ends = 0
  local function on_progress(token, kind)
    if kind == 'begin' then
      R.progress_begin = true
    elseif kind == 'end' and not ended[token] then
      ended[token] = true
      R.progress_end = true
      R.progress_ends = R.progress_ends + 1
    end
  end
  if vim.fn.has('nvim-0.10') == 1 then
    vim.api.nvim_create_autocmd('LspProgress', {
      callback = function(ev)
        local params = ev.data and (ev.data.params or ev.data.result)
        if params and type(params.value) == 'table' then
          on_progress(params.token, params.value.kind)
        end
      end,
    })
  else
    vim.api.nvim_create_autocmd('User', {
      pattern = 'LspProgressUpdate',
      callback = function()
        for _, c in pairs(vim.lsp.get_active_clients()) do
          for token, p in pairs(c.messages.progress) do
            on_progress(token, 'begin')
            if p.done then
              on_progress(token, 'end')
            end
          end
        end
      end,
    })
  end
  local function sample_status()
    local s = genls.status()
    if s ~= '' and #R.statuses < 5 and R.statuses[#R.statuses] ~= s then
      table.insert(R.statuses, s)
    end
  end

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
  wait(10000, function()
    local c = genls.client(bufnr)
    return (c ~= nil and c.initialized == true) or server_quit()
  end, 10)
  local client = genls.client(bufnr)
  if not client or not client.initialized then
    error('genls did not attach and initialize' .. (server_quit() and ' (the server exited)' or ''))
  end
  R.commands = true
  for _, name in ipairs({ 'Generate', 'Rewrite', 'Cancel', 'Accept', 'Discard', 'Regenerate' }) do
    R.commands = R.commands and vim.fn.exists(':Genls' .. name) == 2
  end
  R.attached_unnamed = 0
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(b) and vim.api.nvim_buf_get_name(b) == '' and genls.client(b) then
      R.attached_unnamed = R.attached_unnamed + 1
    end
  end
  R.offset_encoding = client.offset_encoding

  local function text()
    return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), '\n')
  end
  local function quiet_for(ms)
    return now() - last_change >= ms
  end
  -- :messages of the current step set aside before a :messages clear.
  local held_messages = ''

  -- One generation, started as the scenario says, until the server's
  -- progress has ended and the buffer has been quiet for a moment (edits
  -- are applied before the progress ends, but allow for a stray late one to
  -- show up as a failure rather than a race).
  local function generate(lines)
    local ends = R.progress_ends
    R.generate_ms = now()
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
      vim.cmd((lines or env('RANGE', '1,1')) .. 'GenlsGenerate')
    end

    if scenario == 'typing' then
      -- The user types elsewhere while the text streams in, once the first
      -- token has arrived, as keys: by default a new first line and more at
      -- the end of the last line (two Insert-mode changes of their own).
      local wait_for = env('TYPE_AFTER')
      if not wait(timeout, function()
        return runaway() or text():find(wait_for, 1, true) ~= nil
      end, 1) then
        error('buffer never contained ' .. vim.inspect(wait_for) .. ': ' .. vim.inspect(text()))
      end
      if not runaway() then
        -- What the typing prints (an undo's "1 line less") is the user's.
        held_messages = held_messages .. vim.api.nvim_exec('messages', true)
        vim.g.genls_test_typed = 0
        vim.api.nvim_input(env('TYPE_KEYS', 'ggOtyped above<Esc>G$a and below<Esc>')
          .. '<Cmd>let g:genls_test_typed = 1<CR>')
        if not wait(timeout, function()
          return vim.g.genls_test_typed == 1
        end, 1) then
          error('the typing did not happen: ' .. vim.inspect(text()))
        end
        vim.cmd('messages clear')
        R.typed_at_changes = R.changes
      end
    end

    if scenario == 'cancel' then
      local wait_for = env('CANCEL_AFTER')
      if not wait(timeout, function()
        sample_status()
        return runaway() or text():find(wait_for, 1, true) ~= nil
      end, 5) then
        error('buffer never contained ' .. vim.inspect(wait_for) .. ': ' .. vim.inspect(text()))
      end
      R.cancelled_at_changes = R.changes
      vim.cmd('GenlsCancel')
    end

    local done = wait(timeout, function()
      sample_status()
      return runaway() or (R.progress_ends > ends and quiet_for(300))
    end, 5)
    R.finished = R.finished and done and not runaway()
  end

  -- A generation that start begins, until its progress has ended and the
  -- buffer has been quiet for a moment.
  local function generation(start)
    local ends = R.progress_ends
    R.generate_ms = now()
    start()
    local done = wait(timeout, function()
      return runaway() or (R.progress_ends > ends and quiet_for(300))
    end, 5)
    R.finished = R.finished and done and not runaway()
  end

  local function code_actions()
    local kinds = {}
    local c = genls.client(bufnr)
    local params = {
      textDocument = { uri = vim.uri_from_bufnr(bufnr) },
      range = { start = { line = 0, character = 0 }, ['end'] = { line = 0, character = 0 } },
      context = { diagnostics = {} },
    }
    local done = false
    local request = c.request
    if vim.fn.has('nvim-0.11') == 1 then
      request = function(...)
        return c:request(...)
      end
    end
    request('textDocument/codeAction', params, function(err, actions)
      if err then
        kinds = { 'error: ' .. (err.message or vim.inspect(err)) }
      end
      for _, a in ipairs(actions or {}) do
        table.insert(kinds, a.kind or a.command)
      end
      done = true
    end, bufnr)
    if not wait(5000, function()
      return done
    end) then
      error('no answer to textDocument/codeAction')
    end
    return kinds
  end

  -- The genls diagnostics in the buffer, as vim.diagnostic has them.
  local function marks()
    local found = {}
    for _, d in ipairs(vim.diagnostic.get(bufnr)) do
      if d.source == 'genls' then
        local lsp = d.user_data and d.user_data.lsp or {}
        table.insert(found, {
          lnum = d.lnum,
          col = d.col,
          end_lnum = d.end_lnum,
          end_col = d.end_col,
          severity = d.severity,
          message = d.message,
          code = d.code or lsp.code,
          tags = lsp.tags,
        })
      end
    end
    return found
  end

  -- :GenlsAccept, :GenlsDiscard or :GenlsRegenerate (name), until the
  -- server answered; a Regenerate also until its new generation ended.
  local function review(name, bang, report)
    local ends = R.progress_ends
    local answered = #reviews
    vim.cmd('Genls' .. name:sub(1, 1):upper() .. name:sub(2) .. (bang and '!' or ''))
    if not wait(timeout, function()
      return #reviews > answered
    end, 5) then
      error('no answer to :Genls' .. name)
    end
    local answer = reviews[#reviews]
    report.result = answer.result
    report.arguments = vim.fn.json_encode(answer.arguments)
    if name == 'regenerate' and type(answer.result) == 'number' and answer.result > 0 then
      R.finished = R.finished and wait(timeout, function()
        return runaway() or (R.progress_ends > ends and quiet_for(300))
      end, 5) and not runaway()
    else
      wait(300, function()
        return quiet_for(200)
      end, 10)
    end
  end

  local function code_lenses(report)
    vim.lsp.codelens.refresh()
    wait(5000, function()
      return #vim.lsp.codelens.get(bufnr) > 0
    end, 10)
    report.lenses = {}
    for _, lens in ipairs(vim.lsp.codelens.get(bufnr)) do
      table.insert(report.lenses, {
        line = lens.range.start.line,
        title = lens.command and lens.command.title,
        command = lens.command and lens.command.command,
      })
    end
  end

  -- Each step reports what it printed; the first also what starting genls
  -- printed.
  local notified = 0
  for i, spec in ipairs(steps) do
    local report = { step = spec }
    local step = parse_step(spec)
    local edits = R.apply_edits
    if step.cursor then
      vim.api.nvim_win_set_cursor(0, step.cursor)
    end
    if step.name == 'gen' then
      generate(step.lines)
    elseif step.name == 'undo' then
      vim.cmd('silent undo')
    elseif step.name == 'accept' or step.name == 'discard' or step.name == 'regenerate' then
      review(step.name, step.bang, report)
    elseif step.name == 'rewrite' then
      local first, last = (step.lines or env('RANGE', '1,1')):match('^(%d+),(%d+)$')
      generation(function()
        vim.api.nvim_win_set_cursor(0, { tonumber(first), 0 })
        vim.cmd('normal! V')
        vim.api.nvim_win_set_cursor(0, { tonumber(last), 0 })
        vim.cmd('normal! \27')
        vim.cmd("'<,'>GenlsRewrite")
      end)
    elseif step.name == 'rewrite-inline' then
      generation(function()
        vim.cmd((step.lines or env('RANGE', '1,1')) .. 'GenlsRewrite ' .. env('INSTRUCTION', ''))
      end)
    elseif step.name == 'gen-ask' then
      generation(function()
        vim.cmd((step.lines or env('RANGE', '1,1')) .. 'GenlsGenerate!')
      end)
    elseif step.name == 'gen-inline' then
      generation(function()
        vim.cmd((step.lines or env('RANGE', '1,1')) .. 'GenlsGenerate ' .. env('INSTRUCTION', ''))
      end)
    elseif step.name == 'lens' then
      code_lenses(report)
    elseif step.name == 'actions' then
      report.kinds = code_actions()
    elseif step.name == 'settle' then
      -- Lets messages the server sends on its own (window/showMessage goes
      -- out asynchronously) arrive.
      wait(300, function()
        return false
      end, 50)
    elseif step.name == 'await-message' then
      if not wait(timeout, function()
        return #R.messages > 0
      end, 10) then
        error('no message arrived')
      end
    elseif step.name == 'health' then
      vim.cmd('checkhealth genls')
      report.lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
      vim.cmd('tabclose')
    else
      error('unknown step ' .. spec)
    end
    if step.marks then
      wait(5000, function()
        local found = marks()
        for _, m in ipairs(found) do
          if m.code == 'genls.generating' then
            return false
          end
        end
        return #found == step.marks
      end, 10)
    end
    report.marks = marks()
    report.apply_edits = R.apply_edits - edits
    report.text = text()
    report.messages = held_messages .. vim.api.nvim_exec('messages', true)
    held_messages = ''
    vim.cmd('messages clear')
    report.notified = {}
    for j = notified + 1, #R.messages do
      table.insert(report.notified, tostring(R.messages[j].msg))
    end
    notified = #R.messages
    R.steps[i] = report
    if runaway() then
      break
    end
  end
  R.last_change_ms = last_change
  R.status_after = genls.status()
  R.bytes = vim.api.nvim_buf_get_offset(bufnr, vim.api.nvim_buf_line_count(bufnr))

  vim.api.nvim_buf_call(bufnr, function()
    vim.cmd('silent write! ' .. vim.fn.fnameescape(out))
  end)

  local id = client.id
  vim.lsp.stop_client(id)
  R.server_stopped = wait(5000, function()
    return vim.lsp.get_client_by_id(id) == nil
  end, 10)
end

session = coroutine.create(run)
resume()
