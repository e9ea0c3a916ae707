// Runs the genls extension in a real VS Code (code-server) shown by headless
// Chromium, twice, each time on a fresh code-server profile:
//
//  1. "exttests": the extension is loaded from source (extensionDevelopmentPath)
//     and out/test/suite.js runs inside the extension host (extensionTestsPath);
//     VS Code reports the result through window.codeAutomationExit.
//  2. "ui": a user's session driven through the workbench with the keyboard
//     and mouse, with the packaged .vsix installed (GENLS_E2E_VSIX) like a
//     user would: first run, settings, token, Generate, undo, Escape, Discard
//     (see uiRun).
//
// Configuration comes from the environment (vscode_test.go sets it):
//   GENLS_E2E_CODE_SERVER  code-server executable (Node 24 must be first on PATH)
//   GENLS_E2E_CHROMIUM     browser executable (default /usr/bin/chromium)
//   GENLS_E2E_WORKDIR      scratch directory for profiles and workspaces
//   GENLS_SERVER_PATH      the genls binary (written to genls.serverPath)
//   GENLS_TEST_*           read by the in-extension-host suite (src/test/suite.ts)
//   GENLS_E2E_UI_URL, GENLS_E2E_UI_TEXT, GENLS_E2E_UI_HANG_TEXT, GENLS_E2E_UI_TOKEN
//                          the UI run's endpoint, the texts of its two generations
//                          (the second hangs after it) and the token typed into
//                          "Set API Token"
//   GENLS_E2E_UI_COMPLETION_TEXT, GENLS_E2E_UI_COMPLETION_TYPED, GENLS_E2E_UI_COMPLETION_TYPED_OFF
//                          what the UI run's endpoint answers an inline completion
//                          with (once its scripted generations are used up), what is
//                          typed before it, and what is typed with completion off
//   GENLS_E2E_UI_INSTRUCTION, GENLS_E2E_UI_REWRITE_TEXT, GENLS_E2E_UI_REWRITE_AGAIN_TEXT
//                          the instruction typed into Rewrite… and its two rewrites
//   GENLS_E2E_UI_GENERATE_INSTRUCTION, GENLS_E2E_UI_GENERATE_TEXT
//                          the instruction typed into Generate… and what it generates
//   GENLS_E2E_SCREENSHOT   where the UI run saves its screenshot of a generation streaming
//   GENLS_E2E_PENDING_SCREENSHOT   ... and of a pending generation, if set
//   GENLS_E2E_GHOST_SCREENSHOT     ... and of an inline completion's ghost text, if set
//   GENLS_E2E_VSIX         a packaged extension the UI run installs (default: load from source)
//   GENLS_E2E_VSIX_BUNDLED "1" when that .vsix carries genls: genls.serverPath is left empty
//   GENLS_E2E_RUNS         "exttests,ui" (default) or a subset
// Exit status 0 when every run passed.
import { chromium } from 'playwright-core';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const extDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const need = name => {
  const v = process.env[name];
  if (!v) {
    console.error(`run.mjs: ${name} is not set`);
    process.exit(2);
  }
  return v;
};
const codeServer = need('GENLS_E2E_CODE_SERVER');
const genls = need('GENLS_SERVER_PATH');
const workdir = need('GENLS_E2E_WORKDIR');
const browserPath = process.env.GENLS_E2E_CHROMIUM || '/usr/bin/chromium';
const runs = (process.env.GENLS_E2E_RUNS || 'exttests,ui').split(',');

const t0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
const sleep = ms => new Promise(r => setTimeout(r, ms));

// Every code-server started, so that an interrupted run (vscode_test.go's
// timeout sends SIGINT) does not leave process groups behind.
const running = new Set();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    log(`${sig}: stopping ${running.size} code-server(s)`);
    await Promise.all([...running].map(stop => stop()));
    process.exit(130);
  });
}

const baseSettings = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.colorTheme': 'Default Dark Modern',
  'files.autoSave': 'off',
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoUpdate': false,
  'extensions.autoCheckUpdates': false,
  'extensions.ignoreRecommendations': true,
  'chat.disableAIFeatures': true,
  'git.enabled': false,
  'security.workspace.trust.enabled': false,
  'editor.minimap.enabled': false,
  'window.commandCenter': false,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'workbench.layoutControl.enabled': false,
  'genls.serverPath': genls,
  'genls.endpoint.backend': 'tgi',
  'genls.log.level': 'debug',
  // vscode_test.go checks that these reach the endpoint.
  'genls.parameters.max_new_tokens': 64,
  'genls.parameters.stop_sequences': ['<END>'],
  // Inline completion off (as with the status-bar toggle) until the tests
  // about it turn it on: typing would otherwise ask the scripted endpoints
  // for completions and use up their scripts.
  'genls.completion.enabled': 'off',
};

// The settings a user puts in the remote machine's settings: the
// machine-scoped ones, which in a remote window are read from there only.
// The others go in the User settings, where the README says to put them,
// genls.endpoint.url included: src/test/suite.ts checks that it is read
// from there.
const machineScoped = new Set(['genls.serverPath', 'genls.log.file']);

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// startCodeServer starts code-server on a fresh profile and workspace. It runs
// in its own process group so that stop() ends it with every child (extension
// host, genls).
async function startCodeServer(name, settings, files, options = {}) {
  const dir = path.join(workdir, name);
  const ws = path.join(dir, 'workspace');
  const userData = path.join(dir, 'user-data');
  for (const d of [ws, path.join(userData, 'User'), path.join(dir, 'extensions'), path.join(dir, 'tmp')]) {
    fs.mkdirSync(d, { recursive: true });
  }
  // In code-server the extension host is remote: machine-scoped settings
  // (genls.serverPath, genls.log.file) are read from the remote machine's
  // settings, the others from the user's, as a user would set them.
  const all = { ...baseSettings, ...settings };
  const pick = machine => Object.fromEntries(Object.entries(all).filter(([k]) => machineScoped.has(k) === machine));
  fs.mkdirSync(path.join(userData, 'Machine'), { recursive: true });
  fs.writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify(pick(false), null, 2));
  fs.writeFileSync(path.join(userData, 'Machine', 'settings.json'), JSON.stringify(pick(true), null, 2));
  if (options.workspaceSettings) {
    fs.mkdirSync(path.join(ws, '.vscode'), { recursive: true });
    fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify(options.workspaceSettings, null, 2));
  }
  for (const [file, text] of Object.entries(files)) {
    fs.writeFileSync(path.join(ws, file), text);
  }
  const xdg = {
    // genls finds no token and no model server on this machine (only the
    // endpoints the tests name), whatever the machine running the tests has.
    HF_TOKEN: '', HUGGING_FACE_HUB_TOKEN: '', HF_TOKEN_PATH: '', HF_HOME: path.join(dir, 'hf'),
    GENLS_LOCAL_PORTS: String(await freePort()),
    XDG_CONFIG_HOME: path.join(dir, 'xdg', 'config'),
    XDG_DATA_HOME: path.join(dir, 'xdg', 'data'),
    XDG_CACHE_HOME: path.join(dir, 'xdg', 'cache'),
    XDG_RUNTIME_DIR: path.join(dir, 'tmp'),
    TMPDIR: path.join(dir, 'tmp'),
  };
  const common = ['--user-data-dir', userData, '--extensions-dir', path.join(dir, 'extensions')];
  for (const ext of options.extensions ?? []) {
    const res = spawnSync(codeServer, [...common, '--install-extension', ext], { env: { ...process.env, ...xdg }, encoding: 'utf8' });
    if (res.status !== 0) throw new Error(`code-server --install-extension ${ext}: ${res.stdout}${res.stderr}`);
    log(`${name}: installed ${path.basename(ext)}`);
  }
  const port = await freePort();
  const out = fs.openSync(path.join(dir, 'code-server.log'), 'w');
  const child = spawn(codeServer, [
    '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`,
    ...common,
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
    '--disable-getting-started-override', '--reconnection-grace-time', '5',
    // The smoke-test driver makes extensionTestsPath report through
    // codeAutomationExit, but it also suppresses notification toasts.
    ...(options.smokeTestDriver ? ['--vscode-option', 'enable-smoke-test-driver'] : []),
  ], {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, ...xdg },
  });
  const stop = async () => {
    running.delete(stop);
    for (const sig of ['SIGTERM', 'SIGKILL']) {
      try {
        process.kill(-child.pid, sig);
      } catch {
        return;
      }
      for (let i = 0; i < 30 && child.exitCode === null && child.signalCode === null; i++) await sleep(100);
    }
  };
  running.add(stop);
  const deadline = Date.now() + 60000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`code-server exited (${child.exitCode}); see ${dir}/code-server.log`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`code-server did not answer /healthz within 60 s; see ${dir}/code-server.log`);
    }
    await sleep(100);
  }
  log(`${name}: code-server ready on port ${port}`);
  return { dir, ws, userData, port, stop };
}

async function launchBrowser(dir) {
  return chromium.launchPersistentContext(path.join(dir, 'chromium'), {
    executablePath: browserPath,
    headless: true,
    viewport: { width: 1280, height: 720 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

function workbenchURL(cs, payload) {
  const remote = p => `vscode-remote://127.0.0.1:${cs.port}${p}`;
  const entries = Object.entries(payload).map(([k, v]) => [k, remote(v)]);
  const url = `http://127.0.0.1:${cs.port}/?folder=${encodeURIComponent(cs.ws)}`;
  return entries.length > 0 ? `${url}&payload=${encodeURIComponent(JSON.stringify(entries))}` : url;
}

// copyLogs keeps the extension host's and genls' logs next to the run.
function copyLogs(cs) {
  const logs = path.join(cs.userData, 'logs');
  if (!fs.existsSync(logs)) return;
  for (const f of fs.readdirSync(logs, { recursive: true })) {
    if (/genls|exthost\.log$/.test(f)) {
      const src = path.join(logs, f);
      if (fs.statSync(src).isFile()) fs.copyFileSync(src, path.join(cs.dir, f.replace(/[\\/]/g, '_')));
    }
  }
}

// extensionLog returns the text of the extension's output channel (its log file).
function extensionLog(cs) {
  const logs = path.join(cs.userData, 'logs');
  let text = '';
  for (const f of fs.existsSync(logs) ? fs.readdirSync(logs, { recursive: true }) : []) {
    if (f.endsWith(path.join('genls.genls', 'genls.log'))) text += fs.readFileSync(path.join(logs, f), 'utf8');
  }
  return text;
}

function dumpFile(file, title) {
  if (fs.existsSync(file)) {
    console.log(`----- ${title} (${file}) -----\n${fs.readFileSync(file, 'utf8').slice(-20000)}\n----- end -----`);
  }
}

function dumpLogs(cs) {
  copyLogs(cs);
  for (const f of fs.readdirSync(cs.dir)) {
    if (/genls.*\.log$/.test(f)) dumpFile(path.join(cs.dir, f), f);
  }
}

async function extensionTests() {
  const cs = await startCodeServer('exttests', {
    'genls.endpoint.url': process.env.GENLS_TEST_GENERATE_URL ?? '',
  }, {}, {
    smokeTestDriver: true,
    // Ignored: genls.endpoint.url is application-scoped (src/test/suite.ts checks).
    workspaceSettings: { 'genls.endpoint.url': process.env.GENLS_TEST_WORKSPACE_URL ?? '' },
  });
  const ctx = await launchBrowser(cs.dir);
  let code;
  try {
    const page = ctx.pages()[0] ?? await ctx.newPage();
    let exited;
    const exit = new Promise(r => (exited = r));
    // VS Code forwards the extension host's console through codeAutomationLog
    // and reports the end of the extensionTestsPath run with codeAutomationExit.
    await page.exposeFunction('codeAutomationLog', (type, args) => {
      const text = args.map(a => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
      // The suite's own lines in full; the workbench's chatter (stack traces
      // of gallery lookups that fail offline, ...) one line each.
      if (process.env.GENLS_E2E_VERBOSE || /^(ok |not ok |\d+ passed|# )/.test(text)) log(text);
      else log(`exthost ${type}: ${text.split('\n')[0].slice(0, 300)}`);
    });
    await page.exposeFunction('codeAutomationExit', c => exited(c));
    page.on('pageerror', e => log('page error:', e.message));
    await page.goto(workbenchURL(cs, {
      extensionDevelopmentPath: extDir,
      extensionTestsPath: path.join(extDir, 'out', 'test', 'suite.js'),
    }));
    code = await Promise.race([exit, sleep(240000).then(() => 'timeout')]);
    await page.screenshot({ path: path.join(cs.dir, 'final.png') }).catch(() => {});
  } finally {
    await ctx.close().catch(() => {});
    await cs.stop();
  }
  log(`exttests: exit code ${code}`);
  if (code !== 0) {
    dumpLogs(cs);
    dumpFile(path.join(cs.dir, 'code-server.log'), 'code-server.log');
    return false;
  }
  return true;
}

const uiFile = 'fibonacci.py';
const uiOriginal = 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n';
// A second file, to press Escape in while fibonacci.py generates, then
// rewritten.
const otherFile = 'notes.txt';
const otherOriginal = 'Nothing to see here.\n';
// A third, for inline completion: typed at the end of its second line.
const completeFile = 'square.py';
const completeOriginal = 'def square(x):\n    return \n';

// uiRun is a new user's session, through the workbench only:
//
//  1. no endpoint configured: Ctrl+Alt+G shows the first-run message with
//     Open Settings and Set API Token; Open Settings shows genls.endpoint.url
//     on the User tab, where the URL is typed in;
//  2. genls: Set API Token stores the token; run again, it says a token is
//     stored and refuses an empty entry;
//  3. select all, Ctrl+. , Generate: the progress notification has Cancel,
//     the text streams in (screenshot), the result message follows, the
//     generation is marked pending (code lens Accept | Discard | Regenerate,
//     screenshot); a keystroke lands after the generated text; one Ctrl+Z
//     removes the generation, however many edits brought it, one redo restores it;
//  4. Ctrl+Alt+G again, on an endpoint that hangs: Escape in another editor
//     does not cancel it, Escape in its own does; the pending partial text is
//     then discarded with Ctrl+Shift+Alt+Backspace;
//  5. in the other file, select all, Ctrl+Alt+R (Rewrite…): Escape asks
//     for nothing; again, an instruction typed into the input box, Enter:
//     the rewrite streams in after the original, Ctrl+Alt+Enter leaves only
//     the new text (as saved on disk); Rewrite… from the palette, the
//     previous instruction picked from the history, Ctrl+Shift+Alt+Backspace:
//     the file is saved byte for byte as it was (vscode_test.go checks the
//     instructions in the endpoint's requests);
//  5b. in fibonacci.py, its first line selected, "genls: Generate…" from the
//     palette: Escape in its input box asks for nothing; again, an instruction
//     typed, Enter: the generated text streams in after the line; discarded
//     (vscode_test.go checks that the endpoint got one Generate… prompt: the
//     instruction, a blank line, then the line);
//  6. inline completion, off in the User settings: a click on the status-bar
//     item turns it on; typing at the end of a line in square.py shows the
//     endpoint's completion as ghost text, Tab inserts it (as saved on disk);
//     another click turns it off: typing again shows no ghost text
//     (vscode_test.go checks that no prompt with that text reached the endpoint).
async function uiRun() {
  const generated = need('GENLS_E2E_UI_TEXT');
  const expected = uiOriginal + generated;
  const hangText = need('GENLS_E2E_UI_HANG_TEXT');
  const url = need('GENLS_E2E_UI_URL');
  const token = need('GENLS_E2E_UI_TOKEN');
  const rewritten = need('GENLS_E2E_UI_REWRITE_TEXT');
  const rewrittenAgain = need('GENLS_E2E_UI_REWRITE_AGAIN_TEXT');
  const instruction = need('GENLS_E2E_UI_INSTRUCTION');
  const generateInstruction = need('GENLS_E2E_UI_GENERATE_INSTRUCTION');
  const generatedAfterLine = need('GENLS_E2E_UI_GENERATE_TEXT');
  const completion = need('GENLS_E2E_UI_COMPLETION_TEXT');
  const completeTyped = need('GENLS_E2E_UI_COMPLETION_TYPED');
  // Typed there once inline completion is toggled off: no ghost text, and no
  // prompt holding it reaches the endpoint (vscode_test.go checks).
  const completeTypedOff = need('GENLS_E2E_UI_COMPLETION_TYPED_OFF');
  const vsix = process.env.GENLS_E2E_VSIX;
  // No endpoint: the first run. A platform-specific .vsix carries genls:
  // leave genls.serverPath empty so that the extension finds its bundled
  // binary, as it does for users.
  const settings = { 'genls.endpoint.backend': 'auto' };
  if (process.env.GENLS_E2E_VSIX_BUNDLED === '1') settings['genls.serverPath'] = '';
  const cs = await startCodeServer('ui', settings, { [uiFile]: uiOriginal, [otherFile]: otherOriginal, [completeFile]: completeOriginal },
    { extensions: vsix ? [vsix] : [] });
  const ctx = await launchBrowser(cs.dir);
  const shots = path.join(cs.dir, 'shots');
  fs.mkdirSync(shots, { recursive: true });
  const page = ctx.pages()[0] ?? await ctx.newPage();
  const shot = name => page.screenshot({ path: path.join(shots, `${name}.png`) }).catch(() => {});
  page.on('pageerror', e => log('page error:', e.message));
  // Monaco renders the visible lines only, with non-breaking spaces.
  const editorText = () => page.evaluate(() => [...document.querySelectorAll('.editor-instance .view-lines .view-line')]
    .map(l => ({ top: parseFloat(l.style.top), text: l.textContent.replace(/\u00a0/g, ' ') }))
    .sort((a, b) => a.top - b.top).map(l => l.text).join('\n'));
  // waitText polls the editor until it shows want.
  const waitText = async (want, what, timeoutMs = 15000) => {
    let text = '';
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) {
      text = await editorText();
      if (text === want) return;
    }
    throw new Error(`${what}: the editor shows\n got      ${JSON.stringify(text)}\n expected ${JSON.stringify(want)}`);
  };
  const palette = async command => {
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible' });
    await input.fill('>' + command);
    await page.locator('.quick-input-list .monaco-list-row', { hasText: command }).first().waitFor();
    await page.keyboard.press('Enter');
  };
  // editorFocused waits until file's tab is the active one and its editor
  // has the focus.
  const editorFocused = async file => {
    await page.locator('.tabs-container .tab.active', { hasText: file }).first().waitFor();
    await page.locator('.editor-instance .monaco-editor.focused').first().waitFor();
  };
  // quickOpen shows a workspace file in the editor and focuses it.
  const quickOpen = async file => {
    await page.keyboard.press('Control+P');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible' });
    await input.fill(file);
    await page.locator('.quick-input-list .monaco-list-row', { hasText: file }).first().waitFor();
    await page.keyboard.press('Enter');
    await editorFocused(file);
  };
  // showTab brings an open file's tab to the front and focuses its editor.
  const showTab = async file => {
    await page.locator('.tabs-container .tab', { hasText: file }).first().click();
    await editorFocused(file);
  };
  // escapeAsksNothing opens an instruction input box with open, presses
  // Escape in it, and checks a second later that the editor still shows
  // text, unchanged.
  const escapeAsksNothing = async (open, box, text, what) => {
    await open();
    await box.waitFor({ timeout: 10000 });
    await page.keyboard.press('Escape');
    await box.waitFor({ state: 'hidden', timeout: 5000 });
    await sleep(1000);
    await waitText(text, `Escape in the ${what} input box`, 1000);
  };
  const toast = text => page.locator('.notifications-toasts .notification-toast', { hasText: text });
  const clearNotifications = async () => {
    await palette('Notifications: Clear All Notifications').catch(() => page.keyboard.press('Escape'));
    await page.locator('.notifications-toasts .notification-toast').first().waitFor({ state: 'hidden', timeout: 5000 }).catch(() => {});
  };
  // The lines the extension logged since the run started.
  const logged = re => extensionLog(cs).split('\n').filter(l => re.test(l));
  let ok = true;
  const fail = message => {
    ok = false;
    log(`ui: FAIL ${message}`);
  };
  try {
    // The installed .vsix when there is one, else the extension from source.
    await page.goto(workbenchURL(cs, vsix ? {} : { extensionDevelopmentPath: extDir }));
    const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: uiFile });
    await row.waitFor({ timeout: 60000 });
    log('ui: workbench loaded');
    await row.click();
    await page.locator('.editor-instance .view-lines', { hasText: 'def fibonacci' }).waitFor();
    log('ui: file opened');

    // Select the whole file and ask for code actions: Ctrl+. on a selection.
    const codeActionMenu = async () => {
      for (let attempt = 0; attempt < 30; attempt++) {
        await page.locator('.editor-instance .view-lines').click();
        await page.keyboard.press('Control+A');
        await page.keyboard.press('Control+.');
        const item = page.locator('.action-widget .monaco-list-row').filter({ hasText: /^\s*Generate\s*$/ });
        try {
          await item.first().waitFor({ timeout: 2000 });
          return item.first();
        } catch {
          // The server may still be starting: close whatever opened and retry.
          await page.keyboard.press('Escape');
          await sleep(500);
        }
      }
      throw new Error('the Generate code action never showed up after Ctrl+.');
    };
    await codeActionMenu();
    await page.keyboard.press('Escape');
    log('ui: the server is up');

    // 1. First run: nothing configured, nothing found, no token.
    await page.keyboard.press('Control+End');
    await page.keyboard.press('Control+Alt+G');
    const firstRun = toast('no model server found');
    await firstRun.waitFor({ timeout: 20000 });
    for (const button of ['Open Settings', 'Set API Token']) {
      await firstRun.locator('.monaco-button', { hasText: button }).waitFor({ timeout: 5000 });
    }
    await shot('01-first-run');
    log('ui: the first Generate offers Open Settings and Set API Token');
    await firstRun.locator('.monaco-button', { hasText: 'Open Settings' }).click();
    const urlSetting = page.locator('.settings-editor [data-key="genls.endpoint.url"]');
    await urlSetting.first().waitFor({ timeout: 10000 });
    const tab = (await page.locator('.settings-editor .settings-tabs-widget .action-label.checked').first().textContent())?.trim();
    if (tab !== 'User') fail(`Open Settings showed genls.endpoint.url on the ${tab} tab, want User`);
    // A value typed while the Settings editor is still settling can be lost
    // (seen once on a loaded machine: the box empty and settings.json
    // without the URL 5 s later). Type again, as a user would, until the
    // User settings.json holds it: every step after this one depends on it.
    const userSettings = path.join(cs.userData, 'User', 'settings.json');
    const urlSaved = () => fs.readFileSync(userSettings, 'utf8').includes(url);
    for (let attempt = 1; attempt <= 5 && !urlSaved(); attempt++) {
      const box = urlSetting.locator('input').first();
      await box.fill(url);
      for (let i = 0; i < 30 && !urlSaved(); i++) await sleep(100);
      if (!urlSaved()) log(`ui: typing ${attempt}: the URL box shows ${JSON.stringify(await box.inputValue().catch(e => e.message))}, settings.json has no URL; typing again`);
    }
    await shot('02-settings');
    if (!urlSaved()) throw new Error('the URL typed into the Settings editor did not reach the User settings.json');
    log('ui: genls.endpoint.url set on the User tab of the Settings editor');
    // The Settings editor opens as a modal: Escape closes it.
    for (let i = 0; i < 5 && await page.locator('.settings-editor').first().isVisible(); i++) {
      await page.keyboard.press('Escape');
      await sleep(300);
    }
    await quickOpen(uiFile);
    log('ui: back in the editor');

    // 2. The API token: stored, then the stored one is not replaced by nothing.
    await palette('genls: Set API Token');
    let input = page.locator('.quick-input-widget input[type="password"]');
    await input.waitFor({ state: 'visible' });
    await input.fill(token);
    await page.keyboard.press('Enter');
    await toast('API token saved').waitFor();
    log('ui: token saved');
    await palette('genls: Set API Token');
    await page.locator('.quick-input-widget', { hasText: 'an API token is stored' }).waitFor({ timeout: 5000 });
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Remove token' }).waitFor();
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Replace token' }).click();
    input = page.locator('.quick-input-widget input[type="password"]');
    await input.waitFor({ state: 'visible' });
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-widget .quick-input-message', { hasText: 'Enter a token' }).waitFor({ timeout: 5000 });
    await shot('03-empty-token');
    await page.keyboard.press('Escape');
    log('ui: Set API Token says a token is stored, offers Remove token and refuses an empty one');
    // vscode_test.go checks that the endpoint received the token.
    await clearNotifications();

    // 3. Generate from the code action menu.
    const item = await codeActionMenu();
    const menu = await page.locator('.action-widget .monaco-list-row').allTextContents();
    log(`ui: Ctrl+. on a selection shows ${JSON.stringify(menu.map(t => t.trim()))}`);
    await page.screenshot({ path: path.join(shots, '04-code-actions.png') });
    await item.click();

    // The progress notification, with a Cancel button; VS Code shows it as
    // a toast or, when toasts are hidden, in the notification centre.
    const progress = toast('Generating');
    await progress.waitFor({ timeout: 10000 });
    await progress.locator('.monaco-button', { hasText: 'Cancel' }).first().waitFor({ timeout: 5000 });
    log('ui: progress notification with a Cancel button shown');
    let screenshotTaken = false;
    for (let i = 0; i < 300; i++) {
      const text = await editorText();
      if (text === expected) break;
      if (!screenshotTaken && text.length > uiOriginal.length + 40) {
        // Mid-stream, with the progress notification showing.
        await shot('05-generating');
        if (process.env.GENLS_E2E_SCREENSHOT) {
          await page.screenshot({ path: process.env.GENLS_E2E_SCREENSHOT });
          log(`ui: screenshot saved to ${process.env.GENLS_E2E_SCREENSHOT}`);
        }
        screenshotTaken = true;
      }
      await sleep(100);
    }
    await waitText(expected, 'the generated text', 1000);
    log('ui: generated text shown in the editor');
    if (!screenshotTaken) fail('the text arrived all at once; no screenshot of the stream in progress');
    await toast(/tokens in [\d.]+ s/).waitFor({ timeout: 5000 });
    log('ui: result message shown');
    // The extension logs how it applied the generation's edits.
    const [applied] = logged(/ended: length: .*edits in \d+ undo steps?/);
    const [, edits, steps] = /(\d+) edits in (\d+) undo/.exec(applied ?? '') ?? [];
    log(`ui: ${applied ?? 'no log of the generation\'s edits'}`);
    if (!(Number(edits) >= 20) || steps !== '1') fail(`want ≥ 20 edits in 1 undo step, the log says ${edits} edits in ${steps}`);

    // Pending: marked, with Accept | Discard | Regenerate above it.
    const lens = page.locator('.editor-instance .codelens-decoration');
    await lens.filter({ hasText: 'Accept' }).first().waitFor({ timeout: 10000 });
    log(`ui: code lens ${JSON.stringify((await lens.allTextContents()).join(' '))}`);
    await clearNotifications();
    await shot('06-pending');
    if (process.env.GENLS_E2E_PENDING_SCREENSHOT) {
      const box = await page.locator('.editor-instance').first().boundingBox();
      await page.screenshot({ path: process.env.GENLS_E2E_PENDING_SCREENSHOT, clip: { x: box.x, y: box.y, width: Math.min(box.width, 640), height: 170 } });
      log(`ui: screenshot saved to ${process.env.GENLS_E2E_PENDING_SCREENSHOT}`);
    }
    // The mark: VS Code draws a hint as three dots over its first two
    // characters, and shows its hover there only.
    await page.locator('.editor-instance .view-line', { hasText: 'a, b = 0, 1' }).first().hover({ position: { x: 6, y: 8 } });
    await page.locator('.monaco-hover', { hasText: 'pending review' }).first().waitFor({ timeout: 10000 });
    await shot('07-pending-hover');
    await page.mouse.move(5, 5);
    await page.keyboard.press('Escape');
    // Ctrl+. at the generated text: the review actions.
    await page.keyboard.press('Control+.');
    await page.locator('.action-widget .monaco-list-row', { hasText: 'Accept generation' }).first().waitFor({ timeout: 5000 });
    const reviewMenu = await page.locator('.action-widget .monaco-list-row').allTextContents();
    log(`ui: Ctrl+. at a pending generation shows ${JSON.stringify(reviewMenu.map(t => t.trim()))}`);
    await shot('08-review-actions');
    await page.keyboard.press('Escape');
    // Accept: the text stays, the marks go.
    await page.keyboard.press('Control+Alt+Enter');
    await lens.filter({ hasText: 'Accept' }).first().waitFor({ state: 'detached', timeout: 5000 });
    await waitText(expected, 'Ctrl+Alt+Enter accepting the generation', 1000);
    log('ui: Ctrl+Alt+Enter accepted it');

    // The selection was collapsed: a keystroke lands after the generated text.
    await page.keyboard.type('X');
    await waitText(expected + 'X', 'typing after Generate');
    log('ui: a keystroke after Generate replaced nothing');
    await page.keyboard.press('Control+Z');
    await waitText(expected, 'Ctrl+Z after typing X');
    await page.keyboard.press('Control+Z');
    await waitText(uiOriginal, 'one Ctrl+Z removing the generation', 3000);
    log(`ui: one Ctrl+Z removed the generation (${edits} edits)`);
    await page.keyboard.press('Control+Shift+Z');
    await waitText(expected, 'one redo restoring the generation', 3000);
    log('ui: one redo restored it');

    // 4. Escape cancels the generation of its own editor only.
    await page.keyboard.press('Control+End');
    await page.keyboard.press('Control+Alt+G');
    // The editor renders the lines in view only: the second generation
    // grows one line.
    const growing = async what => {
      const before = await editorText();
      await sleep(800);
      const after = await editorText();
      log(`ui: ${what}: ${JSON.stringify(before.slice(expected.length))} -> ${JSON.stringify(after.slice(expected.length))}`);
      return after.length > before.length;
    };
    for (let i = 0; i < 100 && (await editorText()).length <= expected.length; i++) await sleep(100);
    if (!(await growing('generating'))) throw new Error('the second generation did not stream');
    await quickOpen(otherFile);
    // Give the extension host time to see the other editor become active:
    // genls.generating follows it, and Escape must find it settled.
    await sleep(1000);
    await page.keyboard.press('Escape');
    await sleep(300);
    await showTab(uiFile);
    if (!(await growing('after Escape in another editor'))) fail('Escape in another editor cancelled the generation');
    await page.keyboard.press('Escape');
    await toast('generation cancelled').waitFor({ timeout: 5000 });
    if (await growing('after Escape in its editor')) fail('Escape did not cancel the generation');
    else log('ui: Escape cancelled the generation in its editor, not from another');
    log(`ui: genls logged ${JSON.stringify(logged(/INFO\tcancel\t/).map(l => l.slice(l.indexOf('cancel'))))}`);
    // The cancelled generation is pending: Discard removes it.
    await page.keyboard.press('Control+Shift+Alt+Backspace');
    await waitText(expected, 'Ctrl+Shift+Alt+Backspace discarding the cancelled generation', 5000);
    log('ui: Ctrl+Shift+Alt+Backspace discarded it');
    await shot('09-end');

    // 5. Rewrite… with an instruction typed into its input box.
    const onDisk = () => fs.readFileSync(path.join(cs.ws, otherFile), 'utf8');
    // save saves the edited file with Ctrl+S and returns what is on disk.
    const save = async () => {
      const activeTab = page.locator('.tabs-container .tab.active', { hasText: otherFile });
      await page.locator('.tabs-container .tab.active.dirty', { hasText: otherFile }).waitFor({ timeout: 5000 });
      await page.keyboard.press('Control+S');
      await activeTab.and(page.locator('.tab:not(.dirty)')).waitFor({ timeout: 5000 });
      return onDisk();
    };
    const instructionBox = page.locator('.quick-input-widget', { hasText: 'Rewrite without an instruction' });
    await showTab(otherFile);
    await waitText(otherOriginal, 'notes.txt before Rewrite…', 5000);
    await escapeAsksNothing(async () => {
      await page.keyboard.press('Control+A');
      await page.keyboard.press('Control+Alt+R');
    }, instructionBox, otherOriginal, 'Rewrite…');
    log('ui: Escape in the Rewrite… input box rewrote nothing');
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Control+Alt+R');
    await instructionBox.waitFor({ timeout: 10000 });
    await page.keyboard.type(instruction);
    await page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: instruction }).first().waitFor({ timeout: 5000 });
    await shot('10-rewrite-instruction');
    await page.keyboard.press('Enter');
    await waitText(otherOriginal + rewritten, 'the rewrite after the original');
    await lens.filter({ hasText: 'Accept' }).first().waitFor({ timeout: 10000 });
    await shot('11-rewrite-pending');
    log('ui: Ctrl+Alt+R with an instruction streamed the rewrite after the original');
    await page.keyboard.press('Control+Alt+Enter');
    await waitText(rewritten, 'Ctrl+Alt+Enter accepting the rewrite', 5000);
    await lens.filter({ hasText: 'Accept' }).first().waitFor({ state: 'detached', timeout: 5000 });
    let saved = await save();
    if (saved !== rewritten) fail(`after accepting the rewrite the file holds ${JSON.stringify(saved)}, want ${JSON.stringify(rewritten)}`);
    else log('ui: Ctrl+Alt+Enter kept the rewrite only');

    // Rewrite… again from the palette, with the instruction from the history.
    await page.keyboard.press('Control+A');
    await palette('genls: Rewrite…');
    await instructionBox.waitFor({ timeout: 10000 });
    const previous = page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: instruction });
    await previous.first().waitFor({ timeout: 5000 });
    await shot('12-rewrite-history');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    await waitText(rewritten + rewrittenAgain, 'the second rewrite after the first');
    await lens.filter({ hasText: 'Discard' }).first().waitFor({ timeout: 10000 });
    await page.keyboard.press('Control+Shift+Alt+Backspace');
    await waitText(rewritten, 'Ctrl+Shift+Alt+Backspace discarding the rewrite', 5000);
    saved = await save();
    if (saved !== rewritten) fail(`after discarding the rewrite the file holds ${JSON.stringify(saved)}, want ${JSON.stringify(rewritten)}`);
    else log('ui: the instruction picked from the history, Ctrl+Shift+Alt+Backspace discarded the rewrite: the file is as it was');

    // 5b. Generate… from the palette, on fibonacci.py's first line selected
    // whole: Escape in its input box asks for nothing; again, an instruction
    // typed, Enter: the generated text streams in after the line
    // (vscode_test.go checks the prompt: the instruction, a blank line, the line).
    const generateBox = page.locator('.quick-input-widget', { hasText: 'Generate without an instruction' });
    const firstLine = uiOriginal.slice(0, uiOriginal.indexOf('\n') + 1);
    const selectFirstLine = async () => {
      await page.keyboard.press('Control+Home');
      await page.keyboard.press('Shift+ArrowDown');
    };
    await showTab(uiFile);
    await waitText(expected, 'fibonacci.py before Generate…', 5000);
    await escapeAsksNothing(async () => {
      await selectFirstLine();
      await palette('genls: Generate…');
    }, generateBox, expected, 'Generate…');
    log('ui: Escape in the Generate… input box generated nothing');
    await page.locator('.editor-instance .monaco-editor.focused').first().waitFor({ timeout: 5000 });
    await selectFirstLine();
    await palette('genls: Generate…');
    await generateBox.waitFor({ timeout: 10000 });
    await page.keyboard.type(generateInstruction);
    await page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: generateInstruction }).first().waitFor({ timeout: 5000 });
    await shot('12b-generate-instruction');
    await page.keyboard.press('Enter');
    const withGenerated = firstLine + generatedAfterLine + expected.slice(firstLine.length);
    await waitText(withGenerated, 'the text generated after the first line');
    await lens.filter({ hasText: 'Discard' }).first().waitFor({ timeout: 10000 });
    await shot('12c-generate-pending');
    log('ui: Generate… with an instruction streamed the text in after the selected line');
    await page.keyboard.press('Control+Shift+Alt+Backspace');
    await waitText(expected, 'Ctrl+Shift+Alt+Backspace discarding the Generate… text', 5000);
    await lens.filter({ hasText: 'Discard' }).first().waitFor({ state: 'detached', timeout: 5000 });
    log('ui: Ctrl+Shift+Alt+Backspace discarded it');

    // 6. Inline completion, toggled from the status bar.
    const status = icon => page.locator(`.statusbar-item:has(.codicon-${icon})`, { hasText: 'genls' });
    await status('circle-slash').first().waitFor({ timeout: 5000 });
    log(`ui: the status bar shows genls inline completion off (${JSON.stringify(await status('circle-slash').first().getAttribute('aria-label'))})`);
    await quickOpen(completeFile);
    await status('circle-slash').first().click();
    // On once the server has registered inline completion.
    await status('sparkle').first().waitFor({ timeout: 10000 });
    const userSettings6 = fs.readFileSync(path.join(cs.userData, 'User', 'settings.json'), 'utf8');
    if (!/"genls\.completion\.enabled": "on"/.test(userSettings6)) fail(`the status-bar click did not write "on" to the User settings: ${userSettings6}`);
    log('ui: a click on the status-bar item turned inline completion on');
    // The end of the second line, in a focused editor.
    const endOfLine2 = async () => {
      await page.locator('.editor-instance .view-lines').first().click();
      await page.locator('.editor-instance .monaco-editor.focused').first().waitFor();
      await page.keyboard.press('Control+Home');
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('End');
    };
    await endOfLine2();
    await page.keyboard.type(completeTyped, { delay: 50 });
    const ghost = page.locator('.editor-instance .ghost-text-decoration, .editor-instance .ghost-text');
    await ghost.first().waitFor({ timeout: 15000 });
    const ghostText = (await ghost.allTextContents()).join('').replace(/\u00a0/g, ' ');
    await shot('13-ghost-text');
    if (process.env.GENLS_E2E_GHOST_SCREENSHOT) {
      const box = await page.locator('.editor-instance').first().boundingBox();
      await page.screenshot({ path: process.env.GENLS_E2E_GHOST_SCREENSHOT, clip: { x: box.x, y: box.y, width: Math.min(box.width, 640), height: 120 } });
      log(`ui: screenshot saved to ${process.env.GENLS_E2E_GHOST_SCREENSHOT}`);
    }
    log(`ui: ghost text ${JSON.stringify(ghostText)} after typing ${JSON.stringify(completeTyped)}`);
    if (ghostText !== completion) fail(`the ghost text is ${JSON.stringify(ghostText)}, want the endpoint's completion ${JSON.stringify(completion)}`);
    await page.keyboard.press('Tab');
    const completed = completeOriginal.replace('return \n', `return ${completeTyped}${completion}\n`);
    await waitText(completed, 'Tab accepting the ghost text', 5000);
    await ghost.first().waitFor({ state: 'detached', timeout: 5000 });
    await page.keyboard.press('Control+S');
    await page.locator('.tabs-container .tab.active:not(.dirty)', { hasText: completeFile }).first().waitFor({ timeout: 5000 });
    const completedOnDisk = fs.readFileSync(path.join(cs.ws, completeFile), 'utf8');
    if (completedOnDisk !== completed) fail(`after Tab and Ctrl+S ${completeFile} holds ${JSON.stringify(completedOnDisk)}, want ${JSON.stringify(completed)}`);
    else log('ui: Tab inserted the completion (saved file checked)');
    // Off again: typing shows nothing.
    await status('sparkle').first().click();
    await status('circle-slash').first().waitFor({ timeout: 5000 });
    await endOfLine2();
    await page.keyboard.type(completeTypedOff, { delay: 50 });
    await sleep(3000);
    await shot('14-completion-off');
    if (await ghost.count() > 0) fail(`ghost text ${JSON.stringify(await ghost.allTextContents())} with inline completion toggled off`);
    await waitText(completed.replace(completion + '\n', completion + completeTypedOff + '\n'), 'typing with inline completion off', 2000);
    log('ui: a second click turned it off: typing showed no ghost text');

    // Which genls ran: the extension logs "starting <path> --stdio ...".
    const started = extensionLog(cs).match(/starting (\S+) --stdio/)?.[1];
    log(`ui: the extension started ${started}`);
    if (extensionLog(cs).includes(token)) fail('the API token appears in the genls output channel');
    if (process.env.GENLS_E2E_VSIX_BUNDLED === '1' && !started?.startsWith(path.join(cs.dir, 'extensions') + path.sep)) {
      fail('the extension did not run the genls bundled in the .vsix');
    }
  } catch (err) {
    fail(err.stack ?? err);
    await shot('99-failure');
  } finally {
    await ctx.close().catch(() => {});
    await cs.stop();
  }
  if (!ok) {
    dumpLogs(cs);
    dumpFile(path.join(cs.dir, 'code-server.log'), 'code-server.log');
  }
  log(`ui: ${ok ? 'passed' : 'failed'} (screenshots in ${shots})`);
  return ok;
}

let ok = true;
for (const r of runs) {
  try {
    if (r === 'exttests') ok = (await extensionTests()) && ok;
    else if (r === 'ui') ok = (await uiRun()) && ok;
    else throw new Error(`unknown run ${r}`);
  } catch (err) {
    ok = false;
    log(`${r}: ${err.stack ?? err}`);
  }
}
log(ok ? 'all runs passed' : 'some runs failed');
process.exit(ok ? 0 : 1);
