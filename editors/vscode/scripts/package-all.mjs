// Builds one platform-specific .vsix per target, each carrying a genls binary
// cross-compiled with CGO_ENABLED=0, into dist/.
//
// usage: node scripts/package-all.mjs [--out DIR] [target ...]   (default: all targets, into dist/)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const extDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const moduleRoot = path.resolve(extDir, '..', '..');
const binDir = path.join(extDir, 'bin');
const args = process.argv.slice(2);
const outFlag = args.indexOf('--out');
const distDir = outFlag >= 0 ? path.resolve(args.splice(outFlag, 2)[1]) : path.join(extDir, 'dist');
const { version } = JSON.parse(fs.readFileSync(path.join(extDir, 'package.json'), 'utf8'));

// VS Code target -> Go GOOS/GOARCH.
const targets = {
  'linux-x64': ['linux', 'amd64'],
  'linux-arm64': ['linux', 'arm64'],
  'darwin-x64': ['darwin', 'amd64'],
  'darwin-arm64': ['darwin', 'arm64'],
  'win32-x64': ['windows', 'amd64'],
};

const wanted = args;
for (const t of wanted) {
  if (!targets[t]) {
    console.error(`unknown target ${t}; known: ${Object.keys(targets).join(', ')}`);
    process.exit(2);
  }
}

// README links are relative to editors/vscode in the repository.
const repo = 'https://github.com/genls/genls';
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', ...opts });
const vsce = path.join(extDir, 'node_modules', '@vscode', 'vsce', 'vsce');

fs.mkdirSync(distDir, { recursive: true });
try {
  for (const target of wanted.length > 0 ? wanted : Object.keys(targets)) {
    const [goos, goarch] = targets[target];
    fs.rmSync(binDir, { recursive: true, force: true });
    fs.mkdirSync(binDir);
    const exe = path.join(binDir, goos === 'windows' ? 'genls.exe' : 'genls');
    console.log(`${target}: go build (GOOS=${goos} GOARCH=${goarch})`);
    run('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', exe, '.'], {
      cwd: moduleRoot,
      env: { ...process.env, GOOS: goos, GOARCH: goarch, CGO_ENABLED: '0' },
    });
    const out = path.join(distDir, `genls-${target}-${version}.vsix`);
    console.log(`${target}: vsce package -> ${path.relative(extDir, out)}`);
    // vsce runs vscode:prepublish (the production esbuild bundle) itself.
    run(process.execPath, [vsce, 'package', '--no-dependencies', '--skip-license', '--target', target, '-o', out,
      '--baseContentUrl', `${repo}/blob/HEAD/editors/vscode`, '--baseImagesUrl', `${repo}/raw/HEAD/editors/vscode`],
      { cwd: extDir });
  }
} finally {
  // A leftover binary would end up in the next universal `npm run package`.
  fs.rmSync(binDir, { recursive: true, force: true });
}
