// After `tsc`: the browser push client is one hand-written ES module (src/push/client/push-client.mjs,
// served verbatim by PushServer and exported as ./push-client). CommonJS code (createPushClient,
// the ./push entry, Jest without ESM mode) must not require an .mjs, so this writes its CommonJS
// twin, push-client.cjs, with typings copied from the module's own (.d.mts → .d.cts).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

const root = path.join(__dirname, '..');
const source = path.join(root, 'src/push/client/push-client.mjs');
const outDir = path.join(root, 'dist/push/client');

const { outputText, diagnostics } = ts.transpileModule(fs.readFileSync(source, 'utf8'), {
  // named .cjs so that TypeScript emits CommonJS (it keeps an .mjs file's module syntax)
  fileName: 'push-client.cjs',
  reportDiagnostics: true,
  compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, allowJs: true },
});
if (diagnostics && diagnostics.length > 0) {
  for (const d of diagnostics) console.error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  process.exit(1);
}
const header = '// Generated from push-client.mjs by scripts/build-push-client.js; edit the .mjs.\n';
fs.writeFileSync(path.join(outDir, 'push-client.cjs'), header + outputText);
const types = fs.readFileSync(path.join(outDir, 'push-client.d.mts'), 'utf8');
fs.writeFileSync(path.join(outDir, 'push-client.d.cts'), types);
