// Bundles the extension (and the in-editor test suite) into out/ with esbuild.
// usage: node esbuild.mjs [--production] [--watch]
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node18',
  external: ['vscode'],
  sourcemap: !production,
  minify: production,
  logLevel: 'info',
};
const builds = [
  { ...common, entryPoints: ['src/extension.ts'], outfile: 'out/extension.js' },
  // Loaded by VS Code as extensionTestsPath; not shipped in the .vsix (.vscodeignore).
  { ...common, entryPoints: ['src/test/suite.ts'], outfile: 'out/test/suite.js' },
];
if (watch) {
  for (const b of builds) await (await esbuild.context(b)).watch();
} else {
  await Promise.all(builds.map(b => esbuild.build(b)));
}
