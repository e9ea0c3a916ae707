// Runs the genls extension in a real VS Code (code-server) shown by headless
// Chromium, twice, each time on a fresh code-server profile:
//
//  1. "exttests": the extension is loaded from source (extensionDevelopmentPath)
//     and out/test/suite.js runs inside the extension host (extensionTestsPath);
//     VS Code reports the result through window.codeAutomationExit.
//  2. "ui": a user's session driven through the workbench, with the packaged
//     .vsix installed (GENLS_E2E_VSIX) like a user would: open a file from the
//     Explorer, set the API token from the palette, select, Ctrl+. , pick
//     Generate, wait for the streamed text, take a screenshot.
//
// Configuration comes from the environment (vscode_test.go sets it):
//   GENLS_E2E_CODE_SERVER  code-server executable (Node 24 must be first on PATH)
//   GENLS_E2E_CHROMIUM     browser executable (default /usr/bin/chromium)
//   GENLS_E2E_WORKDIR      scratch directory for profiles and workspaces
//   GENLS_SERVER_PATH      the genls binary (written to genls.serverPath)
//   GENLS_TEST_*           read by the in-extension-host suite (src/test/suite.ts)
//   GENLS_E2E_UI_URL, GENLS_E2E_UI_TEXT, GENLS_E2E_UI_TOKEN   the UI run's endpoint,
//                          its scripted text and the token typed into "Set API Token"
//   GENLS_E2E_SCREENSHOT   where the UI run saves its screenshot
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
};

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
  // (genls.serverPath, genls.endpoint.url) are read from the remote machine's
  // settings, not the user's. Keep every genls setting there.
  const all = { ...baseSettings, ...settings };
  const pick = genls => Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith('genls.') === genls));
  fs.mkdirSync(path.join(userData, 'Machine'), { recursive: true });
  fs.writeFileSync(path.join(userData, 'User', 'settings.json'), JSON.stringify(pick(false), null, 2));
  fs.writeFileSync(path.join(userData, 'Machine', 'settings.json'), JSON.stringify(pick(true), null, 2));
  for (const [file, text] of Object.entries(files)) {
    fs.writeFileSync(path.join(ws, file), text);
  }
  const xdg = {
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
  }, {}, { smokeTestDriver: true });
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
    code = await Promise.race([exit, sleep(150000).then(() => 'timeout')]);
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

async function uiRun() {
  const expected = uiOriginal + need('GENLS_E2E_UI_TEXT');
  const token = process.env.GENLS_E2E_UI_TOKEN;
  const vsix = process.env.GENLS_E2E_VSIX;
  // A platform-specific .vsix carries genls: leave genls.serverPath empty so
  // that the extension finds its bundled binary, as it does for users.
  const settings = { 'genls.endpoint.url': need('GENLS_E2E_UI_URL') };
  if (process.env.GENLS_E2E_VSIX_BUNDLED === '1') settings['genls.serverPath'] = '';
  const cs = await startCodeServer('ui', settings, { [uiFile]: uiOriginal }, { extensions: vsix ? [vsix] : [] });
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
  const palette = async command => {
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible' });
    await input.fill('>' + command);
    await page.locator('.quick-input-list .monaco-list-row', { hasText: command }).first().waitFor();
    await page.keyboard.press('Enter');
  };
  let ok = true;
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

    if (token) {
      await palette('genls: Set API Token');
      const input = page.locator('.quick-input-widget input[type="password"]');
      await input.waitFor({ state: 'visible' });
      await input.fill(token);
      await page.keyboard.press('Enter');
      await page.locator('.notifications-toasts', { hasText: 'API token saved' }).waitFor();
      await shot('00-token-set');
      // vscode_test.go checks that the endpoint received it.
      log('ui: token saved');
      // Clear it, so that the notification centre shows only the progress later.
      await palette('Notifications: Clear All Notifications').catch(() => page.keyboard.press('Escape'));
      await page.locator('.notifications-toasts', { hasText: 'API token saved' }).waitFor({ state: 'hidden', timeout: 5000 })
        .catch(() => {});
    }

    const item = await codeActionMenu();
    await shot('01-code-actions');
    log('ui: code action menu open');
    await item.click();

    // The server's progress is a cancellable notification. VS Code shows it
    // as a toast or, when the toast is not shown, as a status bar item that
    // opens the notification centre; either way it has a Cancel button.
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'Generating' });
    const statusItem = page.locator('.statusbar-item', { hasText: 'Generating' });
    await toast.or(statusItem).first().waitFor({ timeout: 10000 });
    let notification = toast;
    if (!(await toast.isVisible())) {
      await statusItem.first().click();
      notification = page.locator('.notifications-center .notification-list-item', { hasText: 'Generating' });
    }
    await notification.first().waitFor({ timeout: 5000 });
    await notification.locator('.monaco-button', { hasText: 'Cancel' }).first().waitFor({ timeout: 5000 });
    log('ui: progress notification with a Cancel button shown');

    let text = '';
    let screenshotTaken = false;
    for (let i = 0; i < 300 && text !== expected; i++) {
      text = await editorText();
      if (!screenshotTaken && text.length > uiOriginal.length + 40) {
        // Mid-stream, with the progress notification showing.
        await shot('02-generating');
        if (process.env.GENLS_E2E_SCREENSHOT) {
          await page.screenshot({ path: process.env.GENLS_E2E_SCREENSHOT });
          log(`ui: screenshot saved to ${process.env.GENLS_E2E_SCREENSHOT}`);
        }
        screenshotTaken = true;
      }
      await sleep(100);
    }
    await shot('03-done');
    if (text !== expected) {
      ok = false;
      log(`ui: editor text mismatch\n got      ${JSON.stringify(text)}\n expected ${JSON.stringify(expected)}`);
    } else {
      log('ui: generated text shown in the editor');
    }
    // Which genls ran: the extension logs "starting <path> --stdio ...".
    const started = extensionLog(cs).match(/starting (\S+) --stdio/)?.[1];
    log(`ui: the extension started ${started}`);
    if (token && extensionLog(cs).includes(token)) {
      ok = false;
      log('ui: the API token appears in the genls output channel');
    }
    if (process.env.GENLS_E2E_VSIX_BUNDLED === '1' && !started?.startsWith(path.join(cs.dir, 'extensions') + path.sep)) {
      ok = false;
      log('ui: the extension did not run the genls bundled in the .vsix');
    }
    if (!screenshotTaken) {
      ok = false;
      log('ui: the text arrived all at once; no screenshot of the stream in progress');
    }
  } catch (err) {
    ok = false;
    log('ui: FAIL', err);
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
