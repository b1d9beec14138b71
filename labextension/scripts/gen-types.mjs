/**
 * Generates src/api-schema.ts, the TypeScript types of the server's API
 * contract (../jupyter_gpu_panel/api/openapi.json), with openapi-typescript
 * from the local node_modules: no network, no npx.
 *
 *   node scripts/gen-types.mjs           (jlpm gen:types)   rewrite src/api-schema.ts
 *   node scripts/gen-types.mjs --check   (jlpm check:types) generate into a temp file
 *                                        and fail when src/api-schema.ts differs
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import openapiTS, { astToString } from 'openapi-typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SPEC = '../jupyter_gpu_panel/api/openapi.json';
const OUT = 'src/api-schema.ts';

const HEADER = `/**
 * GENERATED FILE, DO NOT EDIT: the types of the server's API contract
 * ${SPEC}, written by \`jlpm gen:types\`
 * (scripts/gen-types.mjs, openapi-typescript). After changing the contract,
 * run \`jlpm gen:types\` and commit this file; \`jlpm check:types\` (CI) fails
 * while it differs from what the contract generates.
 */

`;

async function generate() {
  const spec = pathToFileURL(path.join(root, SPEC));
  // emptyObjectsUnknown: an object schema without properties is { [k: string]: unknown },
  // not Record<string, never> (which no real payload satisfies).
  const ast = await openapiTS(spec, {
    silent: true,
    emptyObjectsUnknown: true
  });
  return HEADER + astToString(ast);
}

function firstDifference(a, b) {
  const la = a.split('\n');
  const lb = b.split('\n');
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) {
      return `line ${i + 1}:\n  committed: ${la[i] ?? '(end of file)'}\n  generated: ${lb[i] ?? '(end of file)'}`;
    }
  }
  return null;
}

const check = process.argv.includes('--check');
const text = await generate();
const out = path.join(root, OUT);

if (!check) {
  fs.writeFileSync(out, text);
  console.log(`wrote ${OUT} from ${SPEC}`);
} else {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gen-types-'));
  try {
    const tmp = path.join(dir, 'api-schema.ts');
    fs.writeFileSync(tmp, text);
    const generated = fs.readFileSync(tmp, 'utf8');
    const committed = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
    const diff = firstDifference(committed, generated);
    if (diff !== null) {
      console.error(
        `${OUT} is out of date with ${SPEC}: run \`jlpm gen:types\` and commit it.\nFirst difference at ${diff}`
      );
      process.exitCode = 1;
    } else {
      console.log(`${OUT} matches ${SPEC}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
