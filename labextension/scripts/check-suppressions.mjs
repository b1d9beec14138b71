// Every lint or type suppression in the front end says why (issue 18): an
// ESLint disable comment ends in `-- reason`, a TypeScript expect-error
// comment has a reason after it, and there is no TypeScript ignore or
// nocheck comment. Run by `jlpm lint:check`.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap(e => {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      return sources(p);
    }
    return /\.(tsx?|mjs)$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

// Spelled in pieces so this file does not match itself.
const disable = new RegExp('eslint-' + 'disable');
const bare = new RegExp('@ts-' + '(ignore|nocheck)');
const expectError = new RegExp('@ts-' + 'expect-error(.*)$');

const found = [];
for (const file of ['src', 'test', 'scripts'].flatMap(d =>
  sources(join(root, d))
)) {
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      const m = expectError.exec(line);
      if (
        (disable.test(line) && !/ -- \S/.test(line)) ||
        bare.test(line) ||
        (m !== null && m[1].trim() === '')
      ) {
        found.push(`${relative(root, file)}:${i + 1}: ${line.trim()}`);
      }
    });
}
if (found.length) {
  console.error('Suppressions without a reason (add `-- why`):');
  found.forEach(f => console.error(`  ${f}`));
  process.exit(1);
}
console.log('Every suppression says why.');
