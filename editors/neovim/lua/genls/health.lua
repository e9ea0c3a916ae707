-- :checkhealth genls — is the genls program there, which settings does the
-- server run with, and can it reach the endpoint (what `genls doctor` says).
local M = {}

-- The report functions: vim.health.start/ok/… (0.9+), vim.health.report_*
-- (0.8), health#report_* (0.7).
local function reporter(name)
  local health = vim.health or {}
  local fn = health[name] or health['report_' .. name]
  if fn then
    return fn
  end
  return function(...)
    return vim.fn['health#report_' .. name](...)
  end
end
local start, ok, info, warn, error_ = reporter('start'), reporter('ok'), reporter('info'), reporter('warn'), reporter('error')

-- Runs argv and returns its exit code and output lines, or nil and why not.
local function run(argv, env, timeout_ms)
  local lines = {}
  local function collect(_, data)
    for _, line in ipairs(data or {}) do
      if line ~= '' then
        table.insert(lines, line)
      end
    end
  end
  local started, job = pcall(vim.fn.jobstart, argv, {
    env = env,
    stdout_buffered = true,
    stderr_buffered = true,
    on_stdout = collect,
    on_stderr = collect,
  })
  if not started or job <= 0 then
    return nil, 'could not run ' .. table.concat(argv, ' ') .. (started and '' or (': ' .. tostring(job)))
  end
  local code = vim.fn.jobwait({ job }, timeout_ms)[1]
  if code == -1 then
    vim.fn.jobstop(job)
    return nil, ('%s did not finish within %d s'):format(table.concat(argv, ' '), timeout_ms / 1000)
  end
  return code, lines
end

local function genls_clients()
  local genls = require('genls')
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ name = genls.name })
  end
  local clients = {}
  for _, c in pairs(vim.lsp.get_active_clients()) do
    if c.name == genls.name then
      table.insert(clients, c)
    end
  end
  return clients
end

-- The configuration genls runs with: that of a running client, else the one
-- setup() or vim.lsp.config made, else the defaults.
local function configuration(clients)
  local genls = require('genls')
  if clients[1] then
    return clients[1].config
  end
  if genls._config then
    return genls._config
  end
  if vim.lsp.config and type(vim.lsp.config[genls.name]) == 'table' then
    return vim.lsp.config[genls.name]
  end
  return genls.config()
end

-- The settings sent to the server: initializationOptions, or the genls
-- section of workspace/configuration.
local function settings_of(config)
  local s = config.init_options
  if (type(s) ~= 'table' or vim.tbl_isempty(s)) and type(config.settings) == 'table' then
    s = config.settings.genls or s
  end
  if type(s) ~= 'table' then
    return {}
  end
  return s
end

-- The settings as JSON, with the token hidden.
local function show(settings)
  local copy = vim.deepcopy(settings)
  if type(copy.endpoint) == 'table' and copy.endpoint.token then
    copy.endpoint.token = '(set)'
  end
  return vim.fn.json_encode(copy)
end

function M.check()
  local genls = require('genls')
  local clients = genls_clients()
  local config = configuration(clients)

  start('genls: program')
  local cmd = config.cmd
  local exe
  if type(cmd) ~= 'table' or type(cmd[1]) ~= 'string' then
    info('cmd is not a command line; cannot check the program')
  else
    exe = vim.fn.exepath(cmd[1])
    if exe == '' then
      error_(('%q is not an executable program (cmd = %s)'):format(cmd[1], vim.inspect(cmd)), {
        'Install it: go install github.com/genls/genls@latest',
        'or set cmd to its full path',
      })
      exe = nil
    else
      local code, out = run({ exe, 'version' }, nil, 10000)
      if code == 0 then
        ok(('%s: %s'):format(exe, table.concat(out, ' ')))
      else
        error_(('%s version failed: %s'):format(exe, type(out) == 'table' and table.concat(out, ' ') or tostring(out)))
      end
    end
  end

  start('genls: settings')
  local settings = settings_of(config)
  if vim.tbl_isempty(settings) then
    info('no settings: genls uses its defaults (the Hugging Face router, or GENLS_ENDPOINT)')
  else
    info('settings: ' .. show(settings))
  end
  if #clients == 0 then
    info('genls is not running in this session, so the server has not seen these settings yet')
  end
  for _, client in ipairs(clients) do
    local problems = genls._settings_problems[client.id]
    if problems and #problems > 0 then
      for _, p in ipairs(problems) do
        error_(('the server (client %d) reported: %s'):format(client.id, p.message))
      end
    else
      ok(('the server (client %d) accepted them'):format(client.id))
    end
  end

  start('genls: endpoint (genls doctor)')
  if not exe then
    warn('skipped: the genls program is missing')
    return
  end
  local endpoint = type(settings.endpoint) == 'table' and settings.endpoint or {}
  local argv = { exe, 'doctor' }
  for _, flag in ipairs({ 'url', 'backend', 'model' }) do
    if type(endpoint[flag]) == 'string' and endpoint[flag] ~= '' then
      table.insert(argv, flag == 'url' and '--endpoint' or ('--' .. flag))
      table.insert(argv, endpoint[flag])
    end
  end
  local env
  if type(endpoint.token) == 'string' and endpoint.token ~= '' then
    env = { HF_TOKEN = endpoint.token }
  end
  local code, out = run(argv, env, 60000)
  if code == nil then
    error_(out)
    return
  end
  local verdict = out[#out] or ''
  if code == 0 then
    ok('genls doctor: ' .. verdict)
  else
    local failures = {}
    for _, line in ipairs(out) do
      if line:match('^FAIL') or line:match('^%s+fix:') then
        table.insert(failures, vim.trim(line))
      end
    end
    error_('genls doctor: the endpoint does not work', failures)
  end
  for _, line in ipairs(out) do
    info(line)
  end
end

return M
