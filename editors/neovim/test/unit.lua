-- Unit tests of the plugin's version-specific paths (Neovim 0.8, 0.11,
-- 0.12), which the installed Neovim (0.7.2 in CI) cannot run for real: each
-- test stubs vim.fn.has and the vim.lsp functions of the version it is
-- about, as their source at that version defines them, and loads the plugin
-- afresh. neovim_test.go runs
--   nvim --headless -u NONE -i NONE -n --cmd 'set rtp^=editors/neovim' -c 'luafile test/unit.lua'
-- and reads the report written to GENLS_TEST_RESULT:
--   { tests = { { name, ok, error } } }.
local results = {}
local tests = {}

local function test(name, fn)
  table.insert(tests, { name = name, fn = fn })
end

local function eq(got, want, what)
  if not vim.deep_equal(got, want) then
    error(('%s: got %s, want %s'):format(what, vim.inspect(got), vim.inspect(want)), 2)
  end
end

local function truthy(v, what)
  if not v then
    error(what, 2)
  end
end

local dir = vim.fn.tempname()
vim.fn.mkdir(dir, 'p')
vim.o.hidden = true
vim.cmd('filetype on')

-- The state each test replaces, restored after it.
local saved = {
  has = vim.fn.has,
  notify = vim.notify,
  fs = vim.fs,
  health = vim.health,
  buf_versions = vim.lsp.util.buf_versions,
  deprecate = vim.deprecate,
  str_utfindex = vim.str_utfindex,
}
local lsp_keys = { 'start', 'config', 'enable', 'is_enabled', '_enabled_configs', 'get_clients', 'get_client_by_id' }
for _, k in ipairs(lsp_keys) do
  saved['lsp.' .. k] = vim.lsp[k]
end

local function restore()
  vim.fn.has = saved.has
  vim.notify = saved.notify
  vim.fs = saved.fs
  vim.health = saved.health
  vim.lsp.util.buf_versions = saved.buf_versions
  vim.deprecate = saved.deprecate
  vim.str_utfindex = saved.str_utfindex
  for _, k in ipairs(lsp_keys) do
    vim.lsp[k] = saved['lsp.' .. k]
  end
  vim.cmd('silent! %bwipeout!')
  for _, group in ipairs({ 'genls_start', 'genls_enable', 'genls_attach', 'genls_progress' }) do
    pcall(vim.api.nvim_del_augroup_by_name, group)
  end
  package.loaded['genls'] = nil
  package.loaded['genls.health'] = nil
end

-- Pretends to be Neovim at version v ("0.8", "0.11", …) for has('nvim-x').
local function pretend(v)
  local want = vim.split(v, '.', { plain = true })
  vim.fn.has = function(feature)
    local asked = type(feature) == 'string' and feature:match('^nvim%-(.+)$')
    if not asked then
      return saved.has(feature)
    end
    local a = vim.split(asked, '.', { plain = true })
    for i = 1, 3 do
      local x, y = tonumber(a[i] or '0'), tonumber(want[i] or '0')
      if x ~= y then
        return x < y and 1 or 0
      end
    end
    return 1
  end
end

-- Records vim.notify calls.
local function notifications()
  local seen = {}
  vim.notify = function(msg, level)
    table.insert(seen, { msg = msg, level = level })
  end
  return seen
end

local function file(name, text)
  local path = dir .. '/' .. name
  vim.fn.writefile(vim.split(text or 'Hello', '\n'), path)
  return path
end

-- Opens buffers: a .txt file, a file with no filetype, an unnamed buffer and
-- a scratch (nofile) buffer; returns them by name.
local function open_buffers()
  local b = {}
  vim.cmd('edit ' .. file('a.txt'))
  b.txt = vim.api.nvim_get_current_buf()
  vim.cmd('edit ' .. file('notes'))
  b.notes = vim.api.nvim_get_current_buf()
  vim.cmd('enew')
  b.unnamed = vim.api.nvim_get_current_buf()
  -- Not empty: :enew would reuse an empty unnamed buffer.
  vim.api.nvim_buf_set_lines(b.unnamed, 0, -1, false, { 'Hello' })
  vim.cmd('enew')
  vim.bo.buftype = 'nofile'
  b.scratch = vim.api.nvim_get_current_buf()
  vim.cmd('buffer ' .. b.txt)
  return b
end

-- A program that exists, for cmd.
local exe = vim.v.progpath

-- vim.lsp.start as 0.8-0.12 define it, recording each call: the config,
-- opts, and the buffer that was current (0.8 attaches that one).
local function stub_start(attached)
  local calls = {}
  vim.lsp.start = function(config, opts)
    local call = { config = config, opts = opts or {}, current = vim.api.nvim_get_current_buf() }
    table.insert(calls, call)
    if attached then
      attached[call.opts.bufnr or call.current] = true
    end
    return 1
  end
  return calls
end

-- vim.lsp.config / enable / get_clients as in 0.11: configs resolved from
-- lsp/<name>.lua in 'runtimepath' under those given to vim.lsp.config;
-- enable only records the name (it starts servers on FileType, which these
-- tests leave out). style "0.12" adds vim.lsp.is_enabled.
local function stub_config(style, attached)
  local given = {}
  local enabled = {}
  local config = setmetatable({}, {
    __call = function(_, name, cfg)
      given[name] = vim.tbl_deep_extend('force', given[name] or {}, cfg)
    end,
    __index = function(_, name)
      local resolved = {}
      for _, f in ipairs(vim.api.nvim_get_runtime_file(('lsp/%s.lua'):format(name), true)) do
        resolved = vim.tbl_deep_extend('force', resolved, dofile(f))
      end
      resolved = vim.tbl_deep_extend('force', resolved, given[name] or {})
      resolved.name = name
      return resolved
    end,
  })
  vim.lsp.config = config
  vim.lsp.enable = function(name)
    enabled[name] = {}
  end
  if style == '0.12' then
    vim.lsp._enabled_configs = nil
    vim.lsp.is_enabled = function(name)
      return enabled[name] ~= nil
    end
  else
    vim.lsp._enabled_configs = enabled
    vim.lsp.is_enabled = nil
  end
  vim.lsp.get_clients = function(filter)
    if filter and filter.bufnr and attached[filter.bufnr] then
      return { { id = 1, name = 'genls', initialized = true } }
    end
    return {}
  end
  vim.fs = {
    root = function(bufnr, markers)
      return 'root-of-' .. bufnr .. '-' .. table.concat(markers, ',')
    end,
  }
  return given, enabled
end

local function started_buffers(calls)
  local bufs = {}
  for _, c in ipairs(calls) do
    table.insert(bufs, c.opts.bufnr)
  end
  table.sort(bufs)
  return bufs
end

test('0.8: setup() after files are open attaches every loaded buffer, each once', function()
  pretend('0.8')
  vim.lsp.config, vim.lsp.enable = nil, nil
  local b = open_buffers()
  local calls = stub_start()
  require('genls').setup({ cmd = { exe } })
  local current = {}
  for _, c in ipairs(calls) do
    table.insert(current, c.current)
    eq(c.opts.bufnr, c.current, 'the buffer vim.lsp.start attaches (the current one on 0.8)')
  end
  table.sort(current)
  eq(current, { b.txt, b.notes, b.unnamed }, 'buffers current when vim.lsp.start ran')
  eq(vim.api.nvim_get_current_buf(), b.txt, 'the current buffer after setup()')
end)

test('0.10: vim.lsp.start is given each buffer', function()
  pretend('0.10')
  vim.lsp.config, vim.lsp.enable = nil, nil
  local b = open_buffers()
  local calls = stub_start()
  require('genls').setup({ cmd = { exe } })
  eq(started_buffers(calls), { b.txt, b.notes, b.unnamed }, 'buffers started')
end)

for _, version in ipairs({ '0.11', '0.12' }) do
  test(version .. ': setup() enables genls and attaches the buffers open before it', function()
    pretend(version)
    local attached = {}
    local given, enabled = stub_config(version, attached)
    local b = open_buffers()
    local calls = stub_start(attached)
    local settings = { endpoint = { url = 'http://127.0.0.1:8080' } }
    require('genls').setup({ cmd = { exe }, settings = settings })
    truthy(enabled.genls, 'vim.lsp.enable("genls") was not called')
    eq(given.genls.init_options, settings, 'init_options given to vim.lsp.config')
    eq(given.genls.settings, { genls = settings }, 'settings given to vim.lsp.config')
    eq(given.genls.root_markers, nil, 'root_markers given to vim.lsp.config (lsp/genls.lua has them)')
    eq(started_buffers(calls), { b.txt, b.notes, b.unnamed }, 'buffers started')
    local c = calls[1].config
    eq(c.cmd, { exe }, 'cmd')
    eq(c.name, 'genls', 'name')
    eq(c.root_dir, 'root-of-' .. calls[1].opts.bufnr .. '-.git', 'root_dir')
    truthy(c.handlers and c.handlers['workspace/applyEdit'], 'no workspace/applyEdit handler in the config')
    for _, command in ipairs({ 'genls.generate', 'genls.accept', 'genls.discard', 'genls.regenerate' }) do
      truthy(c.commands and c.commands[command], 'no ' .. command .. ' command in the config')
    end
    eq(c.flags, { debounce_text_changes = 0 }, 'flags')
  end)

  test(version .. ': buffers without a filetype opened after enable attach', function()
    pretend(version)
    local attached = {}
    stub_config(version, attached)
    require('genls').init() -- as plugin/genls.lua does at startup
    vim.lsp.config('genls', { cmd = { exe } })
    vim.lsp.enable('genls')
    local calls = stub_start(attached)
    vim.cmd('edit ' .. file('notes'))
    local notes = vim.api.nvim_get_current_buf()
    eq(vim.bo.filetype, '', 'filetype of notes')
    vim.cmd('edit ' .. file('x.unknownext'))
    local unknown = vim.api.nvim_get_current_buf()
    vim.cmd('enew')
    local unnamed = vim.api.nvim_get_current_buf()
    eq(started_buffers(calls), { notes, unknown, unnamed }, 'buffers started')
    eq(vim.api.nvim_buf_get_name(unnamed), '', 'name of the :enew buffer')
    vim.cmd('buffer ' .. notes)
    eq(#calls, 3, 'starts after entering an attached buffer again')
  end)

  test(version .. ': a config restricted to filetypes is left to vim.lsp.enable', function()
    pretend(version)
    local attached = {}
    stub_config(version, attached)
    require('genls').init()
    vim.lsp.config('genls', { cmd = { exe }, filetypes = { 'markdown' } })
    vim.lsp.enable('genls')
    local calls = stub_start(attached)
    vim.cmd('edit ' .. file('notes'))
    vim.cmd('enew')
    eq(#calls, 0, 'starts')
  end)

  test(version .. ': nothing attaches while genls is not enabled', function()
    pretend(version)
    local attached = {}
    stub_config(version, attached)
    require('genls').init()
    local calls = stub_start(attached)
    vim.cmd('edit ' .. file('notes'))
    vim.cmd('enew')
    eq(#calls, 0, 'starts')
  end)
end

for _, version in ipairs({ '0.8', '0.11' }) do
  test(version .. ': a missing genls program is reported once, as an error', function()
    pretend(version)
    local attached = {}
    if version == '0.11' then
      stub_config(version, attached)
    else
      vim.lsp.config, vim.lsp.enable = nil, nil
    end
    local seen = notifications()
    open_buffers()
    local calls = stub_start(attached)
    require('genls').setup({ cmd = { dir .. '/no-such-genls' } })
    vim.cmd('enew')
    eq(#calls, 0, 'starts')
    eq(#seen, 1, 'notifications')
    eq(seen[1].level, vim.log.levels.ERROR, 'level')
    truthy(seen[1].msg:find('no-such-genls', 1, true) and seen[1].msg:find('not an executable', 1, true),
      'message: ' .. seen[1].msg)
  end)
end

test('0.11: requests go through client:request', function()
  pretend('0.11')
  local attached = {}
  stub_config('0.11', attached)
  local bufnr = vim.api.nvim_get_current_buf()
  local sent = {}
  local client = { id = 1, name = 'genls', initialized = true, offset_encoding = 'utf-16', commands = {} }
  function client:request(method, params, _, buf)
    table.insert(sent, { self = self, method = method, params = params, bufnr = buf })
  end
  vim.lsp.get_clients = function()
    return { client }
  end
  require('genls').cancel(bufnr)
  eq(#sent, 1, 'requests')
  truthy(sent[1].self == client, 'client:request was not called as a method')
  eq(sent[1].method, 'workspace/executeCommand', 'method')
  eq(sent[1].params.command, 'genls.cancel', 'command')
end)

test('0.11: the review commands send the cursor, or with all the buffer, through client:request', function()
  pretend('0.11')
  stub_config('0.11', {})
  -- vim.str_utfindex(s, encoding, index, strict) as 0.11 defines it.
  vim.str_utfindex = function(line, encoding, index)
    local utf32, utf16 = saved.str_utfindex(line, index)
    return encoding == 'utf-32' and utf32 or utf16
  end
  vim.cmd('edit ' .. file('r.txt', 'Hello wörld'))
  local bufnr = vim.api.nvim_get_current_buf()
  vim.api.nvim_win_set_cursor(0, { 1, 9 }) -- on the r after ö: byte 9, UTF-16 8
  local sent = {}
  local client = { id = 1, name = 'genls', initialized = true, offset_encoding = 'utf-16', commands = {} }
  function client:request(method, params, handler, buf)
    table.insert(sent, { method = method, params = params, bufnr = buf })
    handler(nil, 1)
  end
  vim.lsp.get_clients = function()
    return { client }
  end
  vim.lsp.get_client_by_id = function(id)
    return id == client.id and client or nil
  end
  local genls = require('genls')
  genls.accept(bufnr)
  genls.regenerate(bufnr, true)
  genls.review('discard', bufnr, { start = { line = 0, character = 1 }, ['end'] = { line = 0, character = 2 } })
  eq(#sent, 3, 'requests')
  local uri = vim.uri_from_bufnr(bufnr)
  eq(sent[1].params, {
    command = 'genls.accept',
    arguments = { { uri = uri, range = { start = { line = 0, character = 8 }, ['end'] = { line = 0, character = 8 } } } },
  }, 'accept at the cursor (UTF-16)')
  eq(sent[2].params, { command = 'genls.regenerate', arguments = { { uri = uri } } }, 'regenerate, all')
  eq(sent[3].params.arguments[1].range.start.character, 1, 'discard on a range')
end)

-- buf_versions as 0.12 defines it (a maintained table answering 0 for
-- other buffers), as a 0.11 development version did (deprecated, answering
-- changedtick with a warning), and as 0.7-0.10 do (a plain table).
local versions = {
  ['0.12'] = function(bufnr, v)
    local t = setmetatable({}, {
      __index = function(t, b)
        return rawget(t, b) or 0
      end,
    })
    t[bufnr] = v
    return t
  end,
  ['0.11-dev'] = function()
    return setmetatable({}, {
      __index = function(_, b)
        vim.deprecate('vim.lsp.util.buf_versions', 'vim.b.changedtick', '0.13')
        return vim.b[b].changedtick
      end,
    })
  end,
  ['0.7'] = function(bufnr, v)
    return { [bufnr] = v }
  end,
}
for name, make in pairs(versions) do
  test('apply_edit with ' .. name .. ' buf_versions: stale edits are refused silently, current ones applied', function()
    local seen = notifications()
    local deprecated = 0
    vim.deprecate = function()
      deprecated = deprecated + 1
    end
    vim.cmd('edit ' .. file('v.txt', 'Hello'))
    local bufnr = vim.api.nvim_get_current_buf()
    vim.api.nvim_buf_set_lines(bufnr, 1, 1, false, { 'x' })
    vim.api.nvim_buf_set_lines(bufnr, 1, 2, false, {})
    local tick = vim.api.nvim_buf_get_changedtick(bufnr)
    vim.lsp.util.buf_versions = make(bufnr, tick)
    local uri = vim.uri_from_bufnr(bufnr)
    local function edit(version, text)
      return {
        edit = {
          documentChanges = {
            {
              textDocument = { uri = uri, version = version },
              edits = { { range = { start = { line = 0, character = 5 }, ['end'] = { line = 0, character = 5 } }, newText = text } },
            },
          },
        },
      }
    end
    local genls = require('genls')
    local answer = genls.apply_edit(nil, edit(tick - 1, ' stale'), { client_id = 0 })
    eq(answer.applied, false, 'a stale edit applied')
    answer = genls.apply_edit(nil, edit(tick, ' now'), { client_id = 0 })
    eq(answer, { applied = true }, 'answer to a current edit')
    eq(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), { 'Hello now' }, 'buffer')
    eq(#seen, 0, 'notifications')
    eq(deprecated, 0, 'deprecation warnings')
  end)
end

test("config() takes its defaults from the plugin's lsp/genls.lua, not a user's earlier in runtimepath", function()
  local user = dir .. '/user-config'
  vim.fn.mkdir(user .. '/lsp', 'p')
  vim.fn.writefile({ "return { init_options = { endpoint = { url = 'http://127.0.0.1:1' } } }" }, user .. '/lsp/genls.lua')
  local rtp = vim.o.runtimepath
  vim.opt.runtimepath:prepend(user)
  local ok, config = pcall(require('genls').config)
  vim.o.runtimepath = rtp
  assert(ok, config)
  eq(config.cmd, { 'genls' }, 'cmd')
  eq(config.root_markers, { '.git' }, 'root_markers')
  eq(config.flags, { debounce_text_changes = 0 }, 'flags')
end)

-- The health report functions: vim.health.start/ok/… on 0.9+, report_* on 0.8.
for _, style in ipairs({ '0.9', '0.8' }) do
  test(style .. ': :checkhealth genls reports through vim.health', function()
    pretend(style)
    local calls = {}
    local health = {}
    for _, fn in ipairs({ 'start', 'ok', 'info', 'warn', 'error' }) do
      health[style == '0.8' and ('report_' .. fn) or fn] = function(msg)
        table.insert(calls, fn .. ': ' .. msg)
      end
    end
    vim.health = health
    require('genls')._config = require('genls').config({ cmd = { dir .. '/no-such-genls' } })
    require('genls.health').check()
    eq(calls[1], 'start: genls: program', 'first report')
    truthy(calls[2]:find('^error: .*no%-such%-genls.*not an executable'), 'second report: ' .. tostring(calls[2]))
    eq(calls[#calls], 'warn: skipped: the genls program is missing', 'last report')
  end)
end

for _, t in ipairs(tests) do
  local ok, err = xpcall(t.fn, debug.traceback)
  restore()
  table.insert(results, { name = t.name, ok = ok, error = ok and nil or tostring(err) })
end
vim.fn.writefile({ vim.fn.json_encode({ tests = results }) }, os.getenv('GENLS_TEST_RESULT'))
vim.cmd('qa!')
