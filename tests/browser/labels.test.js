// Every label the console uses exists in English and in Chinese. Reads the embedded sources
// directly, so it needs neither the server nor a browser.

import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { it } from 'node:test';
import { REPO } from './harness.js';

const CONSOLE = path.join(REPO, 'crates', 'huidiao', 'console');

// i18n.js imports nothing, so it loads as a module from its text (Node 20 would otherwise take
// a .js file outside a "type": "module" package for CommonJS).
async function messages() {
  const source = await readFile(path.join(CONSOLE, 'i18n.js'), 'utf8');
  const module = await import(`data:text/javascript,${encodeURIComponent(source)}`);
  return module.MESSAGES;
}

it('has the same labels in English and Chinese', async () => {
  const { en, zh } = await messages();
  assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort());
});

it('has a label for every key the console asks for', async () => {
  const { en } = await messages();
  const used = new Set();
  for (const file of await readdir(CONSOLE)) {
    if (!file.endsWith('.js')) continue;
    const source = await readFile(path.join(CONSOLE, file), 'utf8');
    for (const match of source.matchAll(/\bt\('([\w.]+)'/g)) used.add(match[1]);
  }
  assert.ok(used.size > 50, `found only ${used.size} labels; is the pattern still right?`);
  assert.deepEqual([...used].filter((key) => !(key in en)), []);
});
